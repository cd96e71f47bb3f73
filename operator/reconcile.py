"""Reconcile one CanaryRoute: decide (compile, conflicts, secrets), write the ConfigMap, write the status.

Every step compares with what is already there and writes only differences, so reconciling the same object
again writes nothing, and a killed operator converges when it runs again.

Secrets are mirrored into the install namespace (the proxies read Secrets there only): ``spec.jwt.secretRef``
as is, ``spec.tls.secretName`` only once its certificate passes the core's checks and covers the route's
hosts. A certificate that does not leaves the mirror as it was (the last good one keeps serving, restarts
included) and the route ``Ready=False`` with the reason and the field path, while its ConfigMap is still
written: routing, weights and rollbacks go on.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.operator import events
from graylane.operator import status as st
from graylane.operator.configmaps import NameTaken, apply_configmap, delete_route_configmaps
from graylane.operator.kubeapi import NotFound, custom_path, secrets_path
from graylane.operator.state import OperatorState

from graylane.compile import conflicts, names
from graylane.compile.route import CompileError, compile_route
from graylane.tls import certificate as tlscert
from graylane.tls import secret as tls_check

Route = Mapping[str, Any]
LOG = logging.getLogger(__name__)


async def reconcile_route(
    state: OperatorState,
    route: Route,
    *,
    upstreams: Mapping[str, Mapping[str, Any]],
    rivals: Iterable[conflicts.RouteClaim],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> st.Verdict:
    """Bring the route's ConfigMap and status in line with its spec; returns the verdict."""
    meta = route["metadata"]
    key = (meta["namespace"], meta["name"], meta["uid"])
    async with state.lock_for(key[2]):
        verdict, document = await _decide(state, route, upstreams=upstreams, rivals=rivals)
        if document is not None:
            try:
                applied = await apply_configmap(
                    state.require_api(), state.configmaps, route=key, document=document
                )
            except NameTaken as exc:
                verdict, document = st.Verdict(False, st.CONFLICT, f"configMap: {exc}"), None
            else:
                if applied.changed and applied.previous_weight != document["weight"]:
                    if applied.previous_weight is not None:  # a change; the first weight is in the status
                        await _weight_event(
                            state, route, applied.previous_weight, document["weight"], applied.name
                        )
                    logger.info(f"Applied weight {document['weight']} in ConfigMap {applied.name}")
        elif verdict.reason == st.CONFLICT:
            await delete_route_configmaps(state.require_api(), state.configmaps, route_uid=key[2])
        await _write_status(state, route, verdict)
        return verdict


async def _decide(
    state: OperatorState,
    route: Route,
    *,
    upstreams: Mapping[str, Mapping[str, Any]],
    rivals: Iterable[conflicts.RouteClaim],
) -> tuple[st.Verdict, dict[str, Any] | None]:
    conflict = conflicts.find_conflict(conflicts.route_claim(route), rivals)
    if conflict is not None:
        other, host, prefix = conflict
        where = "any host" if host == conflicts.ANY_HOST else f"host {host!r}"
        message = (
            f"spec.hosts/spec.pathPrefix: {where} with pathPrefix {prefix!r} is already claimed by the older "
            f"route {other.namespace}/{other.name}"
        )
        return st.Verdict(False, st.CONFLICT, message), None
    secret_problem = await _mirror_secret(state, route)
    if secret_problem is not None:
        return secret_problem, None
    try:
        document = compile_route(
            route, upstreams, weight=state.weight_of(route), mirror=state.mirror_of(route)
        )
    except CompileError as exc:
        return st.Verdict(False, exc.reason, exc.message), None
    tls_problem = await _mirror_tls(state, route, hosts=(document.get("tls") or {}).get("hosts"))
    if tls_problem is not None:
        return tls_problem, document
    return st.Verdict(True, st.COMPILED, f"compiled; checksum {document['checksum']}"), document


async def _mirror_secret(state: OperatorState, route: Route) -> st.Verdict | None:
    """Copy the HS* key of ``spec.jwt.secretRef`` into the operator-owned Secret; a Verdict on failure."""
    ref = ((route.get("spec") or {}).get("jwt") or {}).get("secretRef")
    if not isinstance(ref, Mapping):
        return None
    if not state.config.mirror_jwt_secrets:
        return st.Verdict(
            False,
            st.SECRET_MIRRORING_DISABLED,
            "spec.jwt.secretRef: HS* keys need the operator's --mirror-jwt-secrets "
            "(chart value jwtSecrets.enabled); use publicKeys or jwksURL otherwise",
        )
    api, meta = state.require_api(), route["metadata"]
    try:
        source = await api.get(secrets_path(meta["namespace"], ref["name"]))
    except NotFound:
        message = f"spec.jwt.secretRef.name: Secret {meta['namespace']}/{ref['name']} not found"
        return st.Verdict(False, st.SECRET_NOT_FOUND, message)
    value = (source.get("data") or {}).get(ref["key"])
    if not value:
        message = f"spec.jwt.secretRef.key: Secret {ref['name']} has no key {ref['key']!r}"
        return st.Verdict(False, st.SECRET_NOT_FOUND, message)
    try:
        base64.b64decode(value, validate=True)
        await _write_mirror(state, route, kind="jwt", data={ref["key"]: value})
    except (NameTaken, ValueError) as exc:
        return st.Verdict(False, st.CONFLICT, f"spec.jwt.secretRef: {exc}")
    return None


async def _mirror_tls(state: OperatorState, route: Route, *, hosts: Any) -> st.Verdict | None:
    """Check the certificate of ``spec.tls.secretName`` and mirror it when it serves ``hosts``; a Verdict
    (the mirror untouched) otherwise."""
    if not isinstance(hosts, list):
        return None  # no spec.tls
    if not state.config.mirror_tls_secrets:
        message = "spec.tls: certificates need the operator's --mirror-tls-secrets (chart value tls.enabled)"
        return st.Verdict(False, st.SECRET_MIRRORING_DISABLED, message)
    namespace, secret = route["metadata"]["namespace"], route["spec"]["tls"]["secretName"]
    try:
        source = await state.require_api().get(secrets_path(namespace, secret))
    except NotFound:
        message = f"spec.tls.secretName: Secret {namespace}/{secret} not found"
        return st.Verdict(False, tlscert.CONDITIONS[tlscert.NOT_FOUND], message)
    checked = tls_check.check_secret(source, hosts=hosts, now=state.now(), name=f"{namespace}/{secret}")
    if checked.problem is not None:
        return st.Verdict(False, checked.reason, checked.problem)
    try:
        await _write_mirror(state, route, kind="tls", data=checked.data, secret_type=tls_check.TLS_TYPE)
    except NameTaken as exc:
        return st.Verdict(False, st.CONFLICT, f"spec.tls: {exc}")
    return None


async def _write_mirror(
    state: OperatorState, route: Route, *, kind: str, data: dict[str, str], secret_type: str = "Opaque"
) -> None:
    """Create or update the route's operator-owned ``kind`` Secret (jwt, tls) holding ``data`` (base64)."""
    api, meta = state.require_api(), route["metadata"]
    namespace = state.config.config_namespace
    name = names.mirrored_secret_name(meta["namespace"], meta["name"], kind)
    labels = names.route_labels(meta["namespace"], meta["name"], meta["uid"])
    labels.pop(names.ROUTE_CONFIG_LABEL)
    labels[names.MIRROR_LABELS[kind]] = "true"
    body = {"apiVersion": "v1", "kind": "Secret", "type": secret_type, "data": data,
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}  # fmt: skip
    try:
        current = await api.get(secrets_path(namespace, name))
    except NotFound:
        await api.create(secrets_path(namespace), body=body)
        return
    if current.get("data") != body["data"] or (current["metadata"].get("labels") or {}) != labels:
        if (current["metadata"].get("labels") or {}).get(names.ROUTE_UID_LABEL) != meta["uid"]:
            raise NameTaken(f"Secret {namespace}/{name} exists and is not this route's")
        await api.merge_patch(secrets_path(namespace, name), patch={"data": body["data"]})


async def _write_status(state: OperatorState, route: Route, verdict: st.Verdict) -> None:
    meta = route["metadata"]
    written = state.configmaps.for_route(meta["uid"])
    current = route.get("status") or {}
    desired = st.desired_status(
        verdict,
        current=current,
        generation=int(meta.get("generation") or 0),
        weight=written[0].weight if written else None,
        config_map=f"{state.config.config_namespace}/{written[0].name}" if written else None,
        checksum=written[0].checksum if written else None,
        now=state.now(),
        extra=state.status_extra(route),
    )
    patch = st.status_patch(current, desired)
    if patch is None:
        return
    url = custom_path("canaryroutes", meta["namespace"], meta["name"]) + "/status"
    try:
        written = await state.require_api().merge_patch(url, patch={"status": patch})
    except NotFound:
        return  # deleted meanwhile; the deletion handler cleans up
    state.observe(route, written)


async def _weight_event(
    state: OperatorState, route: Route, before: float, after: float, configmap: str
) -> None:
    """An Event on the route for every applied weight change (best effort: never fails a reconcile). Not
    for a route's first ConfigMap: its status says the weight is applied, and at 10,000 routes created at
    once those Events were a third of the operator's writes."""
    message = f"canary weight {before:g}% -> {after:g}% (ConfigMap {configmap})"
    await events.post_event(state, route, "Normal", "WeightApplied", message, logger=LOG)
