"""The objects the Gateway controller keeps in the install namespace, built purely from a plan.

Per Gateway with a valid listener: a Deployment of proxies (``graylane-proxy --kube`` selecting the
Gateway's route ConfigMaps, ``--listener-port`` the Gateway's first HTTP port, ``--also-listen`` each
further one, ``--listen-tls`` and ``--tls-listener-port`` its HTTPS port), a ClusterIP Service whose ports
are the Gateway's listener ports, one ConfigMap per attached HTTPRoute holding its document, and a
``kubernetes.io/tls`` copy of each HTTPS listener's certificate (the documents name it; the key never
leaves Secrets). Every object carries the ``graylane.io/gateway-uid`` label (what the operator sweeps by)
and a checksum of its own desired body (what lets the writer skip no-op writes). The pod template is the
chart's (a ConfigMap the chart renders with the proxies' image, ServiceAccount, securityContext and
resources): the controller only adds labels and arguments.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from graylane.compile import names
from graylane.config.document import canonical_json
from graylane.gateway.naming import mirror_name, object_name, route_configmap_name
from graylane.gateway.objects import Key
from graylane.gateway.plan import GatewayPlan
from graylane.tls.certificate import CRT, KEY
from graylane.tls.secret import TLS_TYPE

GATEWAY_UID_LABEL = "graylane.io/gateway-uid"
GATEWAY_ROUTE_LABEL = "graylane.io/gateway-route"
GATEWAY_LABEL = "graylane.io/gateway"
CHECKSUM_ANNOTATION = "graylane.io/checksum"
COMPONENT = "gateway-proxy"
HTTP_TARGET, HTTPS_TARGET, ADMIN_PORT = 8080, 8443, 9901
TEMPLATE_KEY = "pod-template.json"
SOURCE_ANNOTATION = "graylane.io/source-secret"
PROPAGATED_ANNOTATION = "graylane.io/from-gateway"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name"


def labels(planned: GatewayPlan) -> dict[str, str]:
    """Every provisioned object's labels: ``spec.infrastructure.labels``, then ours (which win), among them
    the well-known ``gateway-name`` and ``gateway-class-name`` of GEP-1762."""
    gateway = planned.gateway
    meta = gateway.meta
    return {
        **gateway.infrastructure.labels,
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        "app.kubernetes.io/component": COMPONENT,
        GATEWAY_UID_LABEL: meta.uid,
        GATEWAY_LABEL: names.label_value(f"{meta.namespace}.{meta.name}"),
        GATEWAY_NAME_LABEL: names.label_value(meta.name),
        GATEWAY_CLASS_LABEL: names.label_value(gateway.class_name),
    }


def object_annotations(planned: GatewayPlan, own: Mapping[str, str] | None = None) -> dict[str, str]:
    """``spec.infrastructure.annotations``, then ``own`` (which win), and the record of which keys came from
    the Gateway (so that :func:`merge_patch` can remove them once the Gateway drops them)."""
    infra = planned.gateway.infrastructure
    out = {**infra.annotations, **(own or {})}
    if infra.labels or infra.annotations:
        out[PROPAGATED_ANNOTATION] = canonical_json(
            {"annotations": sorted(infra.annotations), "labels": sorted(infra.labels)}
        )
    return out


def merge_patch(have: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as a merge patch over ``have``: the Gateway's labels and annotations that ``have`` carries
    (its record says which) and ``body`` no longer does become null, on the object and its pod template (a
    merge patch keeps the keys it does not name)."""
    record = ((have.get("metadata") or {}).get("annotations") or {}).get(PROPAGATED_ANNOTATION)
    if not record:
        return body
    try:
        given = json.loads(record)
    except ValueError:
        given = None
    given = given if isinstance(given, dict) else {}
    stale = {  # the record goes too once the Gateway gives nothing
        "labels": _texts(given.get("labels")),
        "annotations": [*_texts(given.get("annotations")), PROPAGATED_ANNOTATION],
    }
    patch = copy.deepcopy(body)
    metas = [patch["metadata"]]
    if patch["kind"] == "Deployment":
        metas.append(patch["spec"]["template"]["metadata"])
    for meta in metas:
        for part, keys in stale.items():
            for key in keys:
                meta.setdefault(part, {}).setdefault(key, None)  # only what the body no longer gives
    return patch


def _texts(value: Any) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, list) else []


def selector(uid: str) -> str:
    """The label selector of one Gateway's route ConfigMaps (its proxies' ``--route-selector``)."""
    return f"{GATEWAY_ROUTE_LABEL}=true,{GATEWAY_UID_LABEL}={uid}"


def sealed(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the checksum annotation of its own content."""
    digest = "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()
    body["metadata"].setdefault("annotations", {})[CHECKSUM_ANNOTATION] = digest
    return body


def container_ports(planned: GatewayPlan) -> list[tuple[str, int, int]]:
    """(Service port name, Gateway port, the proxies' container port) of every port the Gateway serves:
    its first HTTP port on 8080 (``http``), further ones on 8081, 8082, ... (``http-<port>``), its HTTPS port
    on 8443 (``https``)."""
    ports = sorted(planned.ports.items())
    http = [port for port, proto in ports if proto == "HTTP"]
    out = [("http" if k == 0 else f"http-{port}", port, HTTP_TARGET + k) for k, port in enumerate(http)]
    return out + [("https", port, HTTPS_TARGET) for port, proto in ports if proto == "HTTPS"]


def service(planned: GatewayPlan, *, namespace: str) -> dict[str, Any]:
    name = object_name(*planned.gateway.meta.key)
    ports = [{"name": label, "port": port, "protocol": "TCP", "targetPort": target}
             for label, port, target in container_ports(planned)]  # fmt: skip
    spec = {"type": "ClusterIP", "selector": {GATEWAY_UID_LABEL: planned.gateway.meta.uid}, "ports": ports}
    return sealed({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(planned),
                     "annotations": object_annotations(planned)}, "spec": spec,
    })  # fmt: skip


def deployment(planned: GatewayPlan, *, namespace: str, template: Mapping[str, Any]) -> dict[str, Any]:
    """The proxies of one Gateway from the chart's pod ``template`` (a PodTemplateSpec)."""
    uid = planned.gateway.meta.uid
    pod = copy.deepcopy(dict(template))
    pod_meta = pod.setdefault("metadata", {})
    pod_meta.setdefault("labels", {}).update(labels(planned))
    pod_meta["annotations"] = object_annotations(planned, pod_meta.get("annotations"))
    containers = pod.setdefault("spec", {}).setdefault("containers", [])
    args = ["--kube", "--namespace", namespace, "--route-selector", selector(uid),
            "--listen", f"0.0.0.0:{HTTP_TARGET}", "--admin-listen", f"0.0.0.0:{ADMIN_PORT}"]  # fmt: skip
    for label, port, target in container_ports(planned):
        if label == "http":
            args += ["--listener-port", str(port)]
        elif label == "https":
            args += ["--listen-tls", f"0.0.0.0:{HTTPS_TARGET}", "--tls-listener-port", str(port)]
        else:  # a further HTTP port
            args += ["--also-listen", f"0.0.0.0:{target}={port}"]
    for container in containers[:1]:  # the proxy container comes first in the template
        container["args"] = [*container.get("args", []), *args]
    return sealed({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": object_name(*planned.gateway.meta.key), "namespace": namespace,
                     "labels": labels(planned), "annotations": object_annotations(planned)},
        "spec": {"replicas": 1, "selector": {"matchLabels": {GATEWAY_UID_LABEL: uid}}, "template": pod},
    })  # fmt: skip


def configmaps(planned: GatewayPlan, *, namespace: str) -> list[dict[str, Any]]:
    """One ConfigMap per attached route's document, and one for the Gateway's listeners."""
    gateway = object_name(*planned.gateway.meta.key)
    out = []
    found = sorted(planned.documents.items())
    if planned.listeners_document is not None:
        found.append((planned.gateway.meta.uid, dict(planned.listeners_document)))
    for uid, doc in found:
        route: Any = doc["route"]
        if route["kind"] == "Gateway":
            name = f"{gateway}-listeners"  # a route's are <gateway>-r-...
        else:
            name = route_configmap_name(gateway, route["namespace"], route["name"])
        source = {names.ROUTE_ANNOTATION: f"{route['namespace']}/{route['name']}"}
        meta = {"name": name, "namespace": namespace,
                "labels": {**labels(planned), GATEWAY_ROUTE_LABEL: "true", names.ROUTE_UID_LABEL: uid},
                "annotations": object_annotations(planned, source)}  # fmt: skip
        out.append(sealed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                           "data": {names.DATA_KEY: canonical_json(doc)}}))  # fmt: skip
    return out


def secrets(
    planned: GatewayPlan, *, namespace: str, data: Mapping[Key, Mapping[str, str]]
) -> list[dict[str, Any]]:
    """The copies of the certificates the Gateway's valid HTTPS listeners serve (``data``: each usable
    Secret's ``tls.crt`` and ``tls.key``, base64, as read), named as the route documents name them."""
    gateway = object_name(*planned.gateway.meta.key)
    out: dict[str, dict[str, Any]] = {}
    for verdict in planned.listeners:
        if not verdict.valid or not verdict.certificates:
            continue
        ref = verdict.certificates[0]
        found = data.get((ref.namespace, ref.name))
        name = mirror_name(gateway, ref)
        if found is None or name in out:
            continue
        source = {SOURCE_ANNOTATION: f"{ref.namespace}/{ref.name}"}
        meta = {"name": name, "namespace": namespace, "labels": labels(planned),
                "annotations": object_annotations(planned, source)}  # fmt: skip
        out[name] = sealed({"apiVersion": "v1", "kind": "Secret", "type": TLS_TYPE, "metadata": meta,
                            "data": {k: found[k] for k in (CRT, KEY)}})  # fmt: skip
    return list(out.values())
