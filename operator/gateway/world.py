"""The stores the Gateway controller follows, and the :class:`graylane.gateway.plan.World` they make."""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.operator.informer import Store
from graylane.operator.kubeapi import api_path

from graylane.gateway import certs
from graylane.gateway.objects import parse_gateway, parse_gateway_class, parse_reference_grant
from graylane.gateway.plan import Runtime, World
from graylane.gateway.policy import parse_traffic_policy
from graylane.gateway.provision import GATEWAY_ROUTE_LABEL, GATEWAY_UID_LABEL, TEMPLATE_KEY
from graylane.gateway.refs import Service
from graylane.gateway.routes import parse_http_route

GW_API = "/apis/gateway.networking.k8s.io/v1"
GW_BETA = "/apis/gateway.networking.k8s.io/v1beta1"
GRAYLANE_API = "/apis/graylane.io/v1alpha1"
OWNED = f"app.kubernetes.io/component=gateway-proxy,{GATEWAY_UID_LABEL}"


def _service(obj: dict[str, Any]) -> Any:
    spec = obj.get("spec") or {}
    entries = [
        p for p in spec.get("ports") or [] if isinstance(p, Mapping) and isinstance(p.get("port"), int)
    ]
    headless = spec.get("clusterIP") == "None"
    targets = {
        p["port"]: p["targetPort"] for p in entries if headless and isinstance(p.get("targetPort"), int)
    }
    return {"ports": frozenset(p["port"] for p in entries), "targets": targets}


def _labels(obj: dict[str, Any]) -> Any:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _owned(obj: dict[str, Any]) -> Any:
    """Of an object the controller wrote: its metadata, and a Deployment's ready replicas."""
    ready = int((obj.get("status") or {}).get("readyReplicas") or 0)
    return {
        "metadata": obj.get("metadata") or {},
        "ready": ready,
        "clusterIP": (obj.get("spec") or {}).get("clusterIP"),
    }


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _tls_secret(now: Callable[[], datetime.datetime], obj: dict[str, Any]) -> certs.TlsSecret:
    return certs.tls_secret(obj, now=now())


@dataclass
class Stores:
    namespace: str  # the install namespace: where the controller's own objects live
    template: str  # the name of the chart's pod-template ConfigMap there
    now: Callable[[], datetime.datetime] = _utc_now  # when certificates are judged
    all: dict[str, Store] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ns = self.namespace
        self.all = {
            "classes": Store(f"{GW_API}/gatewayclasses"),
            "gateways": Store(f"{GW_API}/gateways"),
            "routes": Store(f"{GW_API}/httproutes"),
            "grants": Store(f"{GW_BETA}/referencegrants"),
            "policies": Store(f"{GRAYLANE_API}/trafficpolicies"),
            "services": Store("/api/v1/services", keep=_service),
            "namespaces": Store("/api/v1/namespaces", keep=_labels),
            "secrets": Store(
                "/api/v1/secrets",
                fields="type=kubernetes.io/tls",
                keep=functools.partial(_tls_secret, self.now),
            ),
            "own_secrets": Store(api_path("/api/v1", "secrets", ns), labels=OWNED, keep=_owned),
            "deployments": Store(api_path("/apis/apps/v1", "deployments", ns), labels=OWNED, keep=_owned),
            "own_services": Store(api_path("/api/v1", "services", ns), labels=OWNED, keep=_owned),
            "configmaps": Store(
                api_path("/api/v1", "configmaps", ns), labels=f"{GATEWAY_ROUTE_LABEL}=true", keep=_owned
            ),
            "template": Store(api_path("/api/v1", "configmaps", ns), fields=f"metadata.name={self.template}"),
        }

    def __getitem__(self, name: str) -> Store:
        return self.all[name]

    @property
    def synced(self) -> bool:
        return all(store.synced for store in self.all.values())

    def world(self) -> World:
        services = {
            k: Service(k[0], k[1], v["ports"], v["targets"]) for k, v in self["services"].objects.items()
        }
        return World(
            classes=tuple(parse_gateway_class(o) for o in self["classes"].objects.values()),
            gateways=tuple(parse_gateway(o) for o in self["gateways"].objects.values()),
            routes=tuple(parse_http_route(o) for o in self["routes"].objects.values()),
            grants=tuple(parse_reference_grant(o) for o in self["grants"].objects.values()),
            services=services, namespaces={k[1]: v for k, v in self["namespaces"].objects.items()},
            secrets=certs.problems(self["secrets"].objects), runtime=self.runtime(),
            https_served=True,  # the Gateway proxies terminate TLS with the copies of the certificates
            policies=tuple(parse_traffic_policy(o) for o in self["policies"].objects.values()),
        )  # fmt: skip

    def certificate_data(self) -> dict[tuple[str, str], Mapping[str, str]]:
        """``tls.crt`` and ``tls.key`` (base64) of every usable certificate Secret, for the copies."""
        return {key: found.data for key, found in self["secrets"].objects.items() if found.problem is None}

    def runtime(self) -> dict[tuple[str, str], Runtime]:
        """Each Gateway's Service address and proxy readiness, from the objects the controller owns."""
        by_uid: dict[str, dict[str, Any]] = {}
        for store, what in ((self["own_services"], "address"), (self["deployments"], "ready")):
            for obj in store.objects.values():
                uid = str((obj["metadata"].get("labels") or {}).get(GATEWAY_UID_LABEL))
                by_uid.setdefault(uid, {})[what] = obj["clusterIP"] if what == "address" else obj["ready"] > 0
        out = {}
        for key, gw in self["gateways"].objects.items():
            found = by_uid.get(str((gw.get("metadata") or {}).get("uid")), {})
            address = found.get("address")
            out[key] = Runtime(address=address if address and address != "None" else None,
                               ready=bool(found.get("ready")))  # fmt: skip
        return out

    def template_spec(self) -> Mapping[str, Any] | None:
        """The chart's pod template (a PodTemplateSpec), or None while it is missing or unreadable."""
        for obj in self["template"].objects.values():
            try:
                value = json.loads(((obj.get("data") or {}).get(TEMPLATE_KEY)) or "null")
            except ValueError:
                return None
            return value if isinstance(value, Mapping) else None
        return None
