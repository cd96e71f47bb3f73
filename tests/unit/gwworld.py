# ruff: noqa: E501  (builders read better on one line)
"""Builders of Gateway API objects (plain dicts, as the API server returns them) and worlds for the tests."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from graylane.gateway import certs
from graylane.gateway.objects import parse_gateway, parse_gateway_class, parse_reference_grant
from graylane.gateway.plan import Plan, Runtime, World, plan
from graylane.gateway.policy import parse_traffic_policy
from graylane.gateway.refs import Service
from graylane.gateway.routes import parse_http_route

NS = "infra"
READY = Runtime(address="10.96.0.10", ready=True)


def meta(name: str, ns: str | None = NS, **extra: Any) -> dict[str, Any]:
    out = {"name": name, "uid": f"uid-{name}", "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"}
    if ns is not None:
        out["namespace"] = ns
    out.update(extra)
    return out


def gateway_class(
    name: str = "graylane", controller: str = "graylane.io/gateway-controller", **spec: Any
) -> dict[str, Any]:
    return {"metadata": meta(name, None), "spec": {"controllerName": controller, **spec}}


def listener(name: str = "http", port: int = 80, protocol: str = "HTTP", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": protocol}
    allowed = extra.pop("allowed", None)
    out["allowedRoutes"] = allowed if allowed is not None else {"namespaces": {"from": "Same"}}
    if "certs" in extra:
        out["tls"] = {"mode": "Terminate", "certificateRefs": extra.pop("certs")}
    out.update(extra)
    return out


def gateway(
    name: str, *listeners: dict[str, Any], ns: str = NS, klass: str = "graylane", **spec: Any
) -> dict[str, Any]:
    return {"metadata": meta(name, ns), "spec": {"gatewayClassName": klass,
                                                  "listeners": list(listeners) or [listener()], **spec}}  # fmt: skip


def parent(name: str, ns: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if ns is not None:
        out["namespace"] = ns
    return out


def backend(name: str, port: int | None = 8080, weight: int | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if port is not None:
        out["port"] = port
    if weight is not None:
        out["weight"] = weight
    return out


def http_route(
    name: str, *parents: dict[str, Any], ns: str = NS, hostnames: list[str] | None = None,
    rules: list[dict[str, Any]] | None = None, created: str = "2026-01-01T00:00:00Z", **status: Any,
) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"parentRefs": list(parents) or [parent("same-namespace")]}
    if hostnames is not None:
        spec["hostnames"] = hostnames
    spec["rules"] = rules if rules is not None else [{"backendRefs": [backend("infra-backend-v1")]}]
    return {"metadata": meta(name, ns, creationTimestamp=created), "spec": spec, "status": status}


def traffic_policy(
    name: str, *targets: str, ns: str = NS, created: str = "2026-01-02T00:00:00Z", **spec: Any
) -> dict[str, Any]:
    """A TrafficPolicy on the routes ``targets`` (``route`` or ``route/rule``); sticky on a header by default."""
    refs = [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": t.partition("/")[0],
             **({"sectionName": t.partition("/")[2]} if "/" in t else {})} for t in targets]  # fmt: skip
    if not spec:
        spec = {"sticky": {"keys": ["header:X-User"]}}
    return {"metadata": meta(name, ns, creationTimestamp=created), "spec": {"targetRefs": refs, **spec}}


def grant(
    name: str, ns: str, sources: list[tuple[str, str, str]], targets: list[tuple[str, str, str | None]]
) -> dict[str, Any]:
    return {"metadata": meta(name, ns), "spec": {
        "from": [{"group": g, "kind": k, "namespace": n} for g, k, n in sources],
        "to": [{"group": g, "kind": k, **({"name": n} if n else {})} for g, k, n in targets],
    }}  # fmt: skip


SERVICES = {
    (NS, name): Service(NS, name, frozenset({8080}))
    for name in ("infra-backend-v1", "infra-backend-v2", "infra-backend-v3")
}
NAMESPACES = {
    NS: {"kubernetes.io/metadata.name": NS},
    "apps": {"kubernetes.io/metadata.name": "apps", "gateway-conformance": "backend"},
    "web": {"kubernetes.io/metadata.name": "web"},
}


def world(
    *objects: dict[str, Any], services: dict[Any, Service] | None = None,
    secrets: dict[tuple[str, str], str | None] | None = None, runtime: dict[Any, Runtime] | None = None,
    https_served: bool = False,
) -> World:  # fmt: skip
    """A World of the given objects (kind told apart by their spec) plus the class ``graylane``."""
    classes = [gateway_class()]
    gateways, routes, grants, policies = [], [], [], []
    for obj in objects:
        spec = obj["spec"]
        if "targetRefs" in spec:
            policies.append(obj)
        elif "controllerName" in spec:
            classes.append(obj)
        elif "listeners" in spec:
            gateways.append(obj)
        elif "parentRefs" in spec:
            routes.append(obj)
        else:
            grants.append(obj)
    keys = [(g["metadata"]["namespace"], g["metadata"]["name"]) for g in gateways]
    return World(
        classes=tuple(map(parse_gateway_class, classes)), gateways=tuple(map(parse_gateway, gateways)),
        routes=tuple(map(parse_http_route, routes)), grants=tuple(map(parse_reference_grant, grants)),
        services=SERVICES if services is None else services, namespaces=NAMESPACES,
        secrets=secrets or {}, runtime=runtime if runtime is not None else dict.fromkeys(keys, READY),
        https_served=https_served, policies=tuple(map(parse_traffic_policy, policies)),
    )  # fmt: skip


def planned(*objects: dict[str, Any], **kw: Any) -> Plan:
    return plan(world(*objects, **kw))


def tls_secret() -> dict[str, Any]:
    """A kubernetes.io/tls Secret with a real self-signed certificate and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "gw.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    data = {"tls.crt": cert.public_bytes(serialization.Encoding.PEM), "tls.key": pem_key}
    return {"type": "kubernetes.io/tls", "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


GOOD_SECRET = certs.tls_secret(tls_secret(), now=datetime.datetime.now(datetime.UTC)).problem
