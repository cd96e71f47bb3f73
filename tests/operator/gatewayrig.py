# ruff: noqa: E501  (one-line manifests read better than wrapped ones)
"""Helpers for the Gateway API operator tests: manifests, condition lookups and a kube-mode Gateway proxy."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cluster.kubectl import Kubectl
from kopfharness import ProxyProcess

from graylane.gateway import provision

BAD_INPUTS = Path(__file__).resolve().parents[1] / "bad_inputs" / "gateway-api"
CONTROLLER = "graylane.io/gateway-controller"
OWN = "app.kubernetes.io/component=gateway-proxy"
EXPECT = re.compile(r"# expect: (\w+)/([-a-z0-9.]+)(?::([-a-z0-9]+))? (\w+)=(True|False)/(\w+)")


def template_configmap(namespace: str, name: str = "graylane-gateway-proxy") -> dict[str, Any]:
    """The pod template the chart would render (restricted securityContext, the proxy image)."""
    pod = {
        "metadata": {"labels": {"app.kubernetes.io/name": "graylane"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "proxy", "image": "graylane/graylane-proxy:test", "args": ["--drain-delay", "2"],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }  # fmt: skip
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"pod-template.json": json.dumps(pod)}}  # fmt: skip


def gateway_class(name: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": name},
            "spec": {"controllerName": CONTROLLER}}  # fmt: skip


def service(name: str, port: int = 8080) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": port, "targetPort": 3000}], "selector": {"app": name}}}  # fmt: skip


def gateway(name: str, klass: str, *listeners: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
            "spec": {"gatewayClassName": klass,
                     "listeners": list(listeners) or [{"name": "http", "port": 80, "protocol": "HTTP"}]}}  # fmt: skip


def http_route(name: str, rules: list[dict[str, Any]], *, gateway: str = "gw", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": gateway}], "rules": rules, **spec}}  # fmt: skip


def conditions_of(obj: dict[str, Any], listener: str | None = None) -> dict[str, tuple[str, str]]:
    """``type -> (status, reason)`` of a Gateway (or one of its listeners), or of an HTTPRoute's parent
    entry or a TrafficPolicy's (first) ancestor entry written by Graylane."""
    status = obj.get("status") or {}
    if obj["kind"] == "TrafficPolicy":
        mine = [a for a in status.get("ancestors") or [] if a.get("controllerName") == CONTROLLER]
        found = mine[0].get("conditions") if mine else []
    elif obj["kind"] == "HTTPRoute":
        ours = [p for p in status.get("parents") or [] if p.get("controllerName") == CONTROLLER]
        found = ours[0].get("conditions") if ours else []
    elif listener is not None:
        found = next(
            (x.get("conditions") for x in status.get("listeners") or [] if x["name"] == listener), []
        )
    else:
        found = status.get("conditions") or []
    return {c["type"]: (c["status"], c["reason"]) for c in found or []}


def current(obj: dict[str, Any]) -> bool:
    """Every condition of ours observed the object's generation."""
    gen = obj["metadata"].get("generation")
    status = obj.get("status") or {}
    conds = list(status.get("conditions") or [])
    for item in [*(status.get("parents") or []), *(status.get("ancestors") or [])]:
        if item.get("controllerName") == CONTROLLER:
            conds += item.get("conditions") or []
    return bool(conds) and all(c.get("observedGeneration") == gen for c in conds)


def bad_input_files() -> list[Path]:
    return sorted(BAD_INPUTS.glob("*.yaml"))


def expectations(path: Path) -> list[tuple[str, str, str | None, str, str, str]]:
    """(kind, name, listener, type, status, reason) of each ``# expect:`` line."""
    out = []
    for line in path.read_text().splitlines():
        m = EXPECT.fullmatch(line.strip())
        if m:
            out.append((m[1], m[2], m[3], m[4], m[5], m[6]))
    return out


class GatewayProxy(ProxyProcess):
    """``graylane-proxy --kube`` as a Gateway's proxies run it (its selector, listener ports 80 and 443), locally."""

    @classmethod
    def of(cls, gateway: dict[str, Any], namespace: str, kubeconfig: Path, log_path: Path, *, tls: bool = False
           ) -> GatewayProxy:  # fmt: skip
        """The proxy of ``gateway`` (the object): its route ConfigMaps in ``namespace``, as provisioned."""
        return cls(namespace, provision.selector(gateway["metadata"]["uid"]), kubeconfig, log_path, tls=tls)

    def __init__(
        self, namespace: str, selector: str, kubeconfig: Path, log_path: Path, *, tls: bool = False
    ) -> None:
        extra = (
            ("--tls-listener-port", "443") if tls else ()
        )  # HTTPS on a free port serving listener port 443
        super().__init__(
            namespace,
            kubeconfig,
            log_path,
            "--route-selector",
            selector,
            "--listener-port",
            "80",
            *extra,
            tls=tls,
        )

    def explain(
        self, path: str, *, host: str = "gw.test", sample: float = 0.5, **headers: str
    ) -> dict[str, Any]:
        query = {"host": host, "path": path, "sample": str(sample)}
        params = [*query.items(), *(("header", f"{k}:{v}") for k, v in headers.items())]
        url = self.admin + "/explain?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=2) as resp:
            return dict(json.loads(resp.read()))


def apply_text(kubectl: Kubectl, text: str, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=text)


def get(kubectl: Kubectl, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    return dict(kubectl.json("get", kind, name, *(["-n", ns] if ns else [])))


def when(kubectl: Kubectl, kind: str, name: str, ns: str | None, ok: Any = current) -> Any:
    """A function for ``eventually``: the object once ``ok(object)`` holds."""

    def check() -> dict[str, Any] | None:
        obj = get(kubectl, kind, name, ns)
        return obj if ok(obj) else None

    return check


def addressed(obj: dict[str, Any]) -> bool:
    return bool((obj.get("status") or {}).get("addresses"))


def route_configmaps(kubectl: Kubectl, ns: str, kind: str = "HTTPRoute") -> list[dict[str, Any]]:
    """The Gateway ConfigMaps in ``ns`` whose document is of ``kind`` (``HTTPRoute``, or ``Gateway``: the
    listeners document of each Gateway)."""
    found = kubectl.json("get", "configmaps", "-n", ns, "-l", "graylane.io/gateway-route=true")["items"]
    return [cm for cm in found if json.loads(cm["data"]["route.json"])["route"].get("kind") == kind]


def owned(kubectl: Kubectl, kind: str, ns: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", kind, "-n", ns, "-l", OWN)["items"])
