"""Kopf handlers: indices over routes and upstreams, event handlers that reconcile, startup and cleanup.

They take effect through :func:`register` (called by ``cli.build_registry``), not on import.

No change-detection handlers, daemons or timers are used on CanaryRoutes, so Kopf puts no finalizer on them:
deleting a route (or uninstalling Graylane) never blocks. The deletion handler removes the route's ConfigMap
when the operator sees the DELETED event; a route deleted while the operator was down is swept at startup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from graylane.operator import housekeeping
from graylane.operator.configmaps import delete_route_configmaps
from graylane.operator.kubeapi import APIError, KubeAPI, NotFound, custom_path
from graylane.operator.reconcile import reconcile_route
from graylane.operator.state import OperatorState

from graylane.compile import conflicts
from graylane.compile.route import upstream_url

GROUP, VERSION = "graylane.io", "v1alpha1"
Logger = logging.Logger | logging.LoggerAdapter[Any]
ANY_UPSTREAM = "*"  # routes with versionRouting depend on every Upstream of their namespace


def plain(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A plain, detached copy of the parts of an object the operator reads."""
    meta = body.get("metadata") or {}
    keep = ("name", "namespace", "uid", "generation", "creationTimestamp", "labels", "resourceVersion")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def routes_by_key(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): plain(body, "CanaryRoute")}


def routes_by_upstream(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
    deps = {spec.get("stable"), spec.get("canary")}
    if spec.get("versionRouting"):
        deps.add(ANY_UPSTREAM)
    return {(namespace, dep): (namespace, name) for dep in deps if isinstance(dep, str)}


def routes_by_tls_secret(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
    tls = spec.get("tls")
    secret = tls.get("secretName") if isinstance(tls, Mapping) else None
    return {(namespace, secret): (namespace, name)} if isinstance(secret, str) else {}


def routes_by_claim(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    claim = conflicts.route_claim(body)
    return {pair: claim for pair in claim.claims}


def upstreams_by_namespace(body: kopf.Body, namespace: str | None, **_: Any) -> dict[Any, Any]:
    return {namespace: plain(body, "Upstream")}


async def startup(settings: kopf.OperatorSettings, memo: Any, logger: Logger, **kwargs: Any) -> None:
    state: OperatorState = memo["state"]
    settings.posting.loggers = False  # only explicit Events (weight changes), not every log line
    settings.watching.server_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5]
    settings.scanning.disabled = not state.config.scan_cluster
    state.api = KubeAPI(settings=settings, logger=logger)
    state.indices = {k: kwargs[k] for k in ("routes_by_key", "routes_by_claim", "upstreams_by_namespace")}
    memo["housekeeping"] = asyncio.create_task(
        housekeeping.run(state, reconcile=reconcile_key, logger=logger)
    )


async def cleanup(memo: Any, **_: Any) -> None:
    task = memo.get("housekeeping")
    if task is not None:
        task.cancel()


async def route_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, logger: Logger, **_: Any) -> None:
    state: OperatorState = memo["state"]
    meta = body.get("metadata") or {}
    key, uid = (str(meta.get("namespace")), str(meta.get("name"))), str(meta.get("uid"))
    before = state.claims.get(uid, frozenset())
    if event.get("type") == "DELETED":
        await _forget_route(state, key, uid, logger=logger)
        await _recheck_claims(state, before, logger=logger)
        return
    now = conflicts.route_claim(body).claims
    state.claims[uid] = now
    await reconcile_key(state, key, logger=logger)
    if before and before != now:
        await _recheck_claims(state, before - now, logger=logger)


async def upstream_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: Any,
    logger: Logger,
    **kwargs: Any,
) -> None:
    state: OperatorState = memo["state"]
    routes_by_upstream: kopf.Index[Any, Any] = kwargs["routes_by_upstream"]
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    dependents = set(routes_by_upstream.get((namespace, name), [])) | set(
        routes_by_upstream.get((namespace, ANY_UPSTREAM), [])
    )
    for key in sorted(dependents):
        await reconcile_key(state, key, logger=logger)
    if event.get("type") != "DELETED":
        await _upstream_status(state, body, logger=logger)


def is_tls_secret(body: kopf.Body, **_: Any) -> bool:
    return body.get("type") == "kubernetes.io/tls"


async def tls_secret_event(body: kopf.Body, memo: Any, logger: Logger, **kwargs: Any) -> None:
    """A certificate Secret changed (cert-manager renewed it, someone fixed it, it was deleted): reconcile
    the routes naming it, which check it and update their mirror within a second."""
    state: OperatorState = memo["state"]
    index: kopf.Index[Any, Any] = kwargs["routes_by_tls_secret"]
    meta = body.get("metadata") or {}
    for key in sorted(set(index.get((meta.get("namespace"), meta.get("name")), []))):
        await reconcile_key(state, key, logger=logger)


async def reconcile_key(state: OperatorState, key: tuple[str, str], *, logger: Logger) -> None:
    """Reconcile the route ``namespace/name`` from the indices; failures are retried by housekeeping."""
    await state.cache_ready.wait()  # the ConfigMap cache is loaded once the API is reachable
    found = list(state.indices["routes_by_key"].get(key, []))
    if not found:
        state.retry.discard(key)
        return
    route = found[-1]
    upstreams = {u["metadata"]["name"]: u for u in state.indices["upstreams_by_namespace"].get(key[0], [])}
    rivals = {
        r.uid: r
        for pair in conflicts.route_claim(route).claims
        for r in state.indices["routes_by_claim"].get(pair, [])
    }
    try:
        verdict = await reconcile_route(
            state, route, upstreams=upstreams, rivals=rivals.values(), logger=logger
        )
    except (TimeoutError, APIError, OSError) as exc:
        logger.warning(f"Reconciling {key[0]}/{key[1]} failed, will retry: {exc!r}")
        state.retry.add(key)
        return
    if verdict.ready or verdict.reason in ("Invalid", "UpstreamNotFound"):
        state.retry.discard(key)  # fixed by an edit or an Upstream event, not by retrying
    else:
        state.retry.add(key)


async def _forget_route(
    state: OperatorState,
    key: tuple[str, str],
    uid: str,
    *,
    logger: Logger,
) -> None:
    api = state.require_api()
    names = await delete_route_configmaps(api, state.configmaps, route_uid=uid)
    if names:
        logger.info(f"Deleted ConfigMaps {names} of the deleted route")
    await housekeeping.delete_mirrored_secret(state, namespace=key[0], name=key[1], uid=uid)
    state.claims.pop(uid, None)
    state.locks.pop(uid, None)


async def _recheck_claims(
    state: OperatorState,
    pairs: frozenset[tuple[str, str]],
    *,
    logger: Logger,
) -> None:
    """Routes that lost a conflict over these claims may now be free to go."""
    keys = {(r.namespace, r.name) for pair in pairs for r in state.indices["routes_by_claim"].get(pair, [])}
    for key in sorted(keys):
        await reconcile_key(state, key, logger=logger)


async def _upstream_status(state: OperatorState, body: kopf.Body, *, logger: Logger) -> None:
    meta = body["metadata"]
    target = upstream_url(body.get("spec") or {}, meta["namespace"])
    desired = {"target": target, "observedGeneration": meta.get("generation")}
    current = body.get("status") or {}
    if all(current.get(k) == v for k, v in desired.items()):
        return
    url = custom_path("upstreams", meta["namespace"], meta["name"]) + "/status"
    try:
        await state.require_api().merge_patch(url, patch={"status": desired})
    except NotFound:
        return
    except APIError as exc:
        logger.warning(f"Cannot write the Upstream status: {exc!r}")


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the ServiceAccount token; elsewhere: ``$KUBECONFIG`` (or ``~/.kube/config``)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def register(registry: kopf.OperatorRegistry, *, watch_tls_secrets: bool = False) -> None:
    """Add the operator's handlers to ``registry``; Kopf runs startup handlers in the order registered.
    ``watch_tls_secrets``: also follow ``kubernetes.io/tls`` Secrets (needs list/watch on Secrets)."""
    for index in (routes_by_key, routes_by_upstream, routes_by_claim, routes_by_tls_secret):
        kopf.index(GROUP, VERSION, "canaryroutes", registry=registry)(index)
    kopf.index(GROUP, VERSION, "upstreams", registry=registry)(upstreams_by_namespace)
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    kopf.on.event(GROUP, VERSION, "canaryroutes", registry=registry)(route_event)
    kopf.on.event(GROUP, VERSION, "upstreams", registry=registry)(upstream_event)
    if watch_tls_secrets:
        kopf.on.event("v1", "secrets", when=is_tls_secret, registry=registry)(tls_secret_event)
