# ruff: noqa: E501  (one-line manifests read better than wrapped ones)
"""TrafficPolicy (GEP-713) against the real kube-apiserver and the real operator: ancestor status per Gateway,
what the route documents get, conflicts decided by age, and the policy following its target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from gatewayrig import GatewayProxy, addressed, conditions_of, gateway, get, http_route, service, when
from kopfharness import OperatorNamespaces
from waiting import eventually

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
GROUP = "gateway.networking.k8s.io"


def policy(name: str, target: str, section: str | None = None, **spec: Any) -> dict[str, Any]:
    ref = {
        "group": GROUP,
        "kind": "HTTPRoute",
        "name": target,
        **({"sectionName": section} if section else {}),
    }
    return {"apiVersion": "graylane.io/v1alpha1", "kind": "TrafficPolicy", "metadata": {"name": name},
            "spec": {"targetRefs": [ref], **spec}}  # fmt: skip


def shop_route() -> dict[str, Any]:
    return http_route("shop", [
        {"name": "main", "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "web-v1", "port": 8080, "weight": 90}, {"name": "web-v2", "port": 8080, "weight": 10}]},
    ])  # fmt: skip


def ancestors(obj: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(a["ancestorRef"]["kind"], a["ancestorRef"]["name"], c["status"], c["reason"])
            for a in (obj.get("status") or {}).get("ancestors") or [] for c in a["conditions"]]  # fmt: skip


def document(kubectl: Kubectl, cfg: str, name: str) -> dict[str, Any] | None:
    for cm in kubectl.json("get", "configmaps", "-n", cfg, "-l", "graylane.io/gateway-route=true")["items"]:
        doc = json.loads(cm["data"]["route.json"])
        if doc["route"]["name"] == name:
            return dict(doc)
    return None


def test_policy_status_document_and_conflicts(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: Any, klass: str, kubeconfig: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ns, cfg = operator_ns.routes, operator_ns.config
    pin = [{"name": "beta", "match": {"headers": [{"name": "X-Beta", "exact": "1"}]}, "backendRef": "web-v2"}]
    kubectl.apply([service("web-v1"), service("web-v2"), gateway("gw", klass), shop_route(),
                   policy("sticky", "shop", "main", sticky={"keys": ["cookie:session"]}, pin=pin)], "-n", ns)  # fmt: skip
    start_operator("--gateway-api")
    found = eventually(when(kubectl, "trafficpolicy", "sticky", ns), what="the policy's status")
    assert ancestors(found) == [("Gateway", "gw", "True", "Accepted")]
    (entry,) = found["status"]["ancestors"]
    assert entry["controllerName"] == "graylane.io/gateway-controller"
    assert entry["ancestorRef"] == {"group": GROUP, "kind": "Gateway", "namespace": ns, "name": "gw"}
    doc = eventually(lambda: (d := document(kubectl, cfg, "shop")) and "sticky" in d["httpRules"][0] and d,
                     what="the document with the policy")  # fmt: skip
    assert doc["httpRules"][0]["sticky"] == {"keys": ["cookie:session"]}
    assert doc["httpRules"][0]["pins"] == [{"name": "beta", "match": pin[0]["match"], "backend": 1}]
    served_by_a_gateway_proxy(kubectl, ns, cfg, kubeconfig, tmp_path)
    unchanged_status_is_not_written(kubectl, ns)

    kubectl.apply(policy("younger", "shop", "main", sticky={"keys": ["sourceIP"]}), "-n", ns)
    younger = eventually(when(kubectl, "trafficpolicy", "younger", ns), what="the younger policy's status")
    assert conditions_of(younger)["Accepted"] == ("False", "Conflicted")
    assert "TrafficPolicy " + ns + "/sticky" in younger["status"]["ancestors"][0]["conditions"][0]["message"]
    assert document(kubectl, cfg, "shop")["httpRules"][0]["sticky"] == {"keys": ["cookie:session"]}  # type: ignore[index]
    before = get(kubectl, "trafficpolicy", "sticky", ns)

    kubectl("delete", "trafficpolicy", "sticky", "-n", ns)
    eventually(lambda: conditions_of(get(kubectl, "trafficpolicy", "younger", ns))["Accepted"] == ("True", "Accepted"),
               what="the conflict resolved when the older policy goes")  # fmt: skip
    eventually(lambda: document(kubectl, cfg, "shop")["httpRules"][0].get("sticky") == {"keys": ["sourceIP"]},  # type: ignore[index]
               what="the younger policy's sticky keys served")  # fmt: skip
    assert before["status"]["ancestors"][0]["conditions"][0]["observedGeneration"] == 1

    kubectl("delete", "httproute", "shop", "-n", ns)
    gone = eventually(lambda: ancestors(get(kubectl, "trafficpolicy", "younger", ns)) == [("HTTPRoute", "shop", "False", "TargetNotFound")],
                      what="TargetNotFound once the route is gone")  # fmt: skip
    assert gone


def served_by_a_gateway_proxy(kubectl: Kubectl, ns: str, cfg: str, kubeconfig: Path, tmp_path: Path) -> None:
    """A kube-mode Gateway proxy serves the policy: the pin over the weights, the sticky cookie."""
    gw = eventually(when(kubectl, "gateway", "gw", ns, addressed), what="Gateway address")
    proxy = GatewayProxy.of(gw, cfg, kubeconfig, tmp_path / "gateway-proxy.log")
    try:
        served = lambda: {r["route"] for r in (proxy.routes() or {}).get("routes", [])}  # noqa: E731
        eventually(lambda: f"{ns}/shop" in served(), what="the route served")
        pinned = proxy.explain("/", sample=0.0, **{"X-Beta": "1"})
        assert (pinned["upstream"], pinned["reason"]) == (f"web-v2.{ns}.8080", "pin:beta")
        sticky = proxy.explain("/", sample=0.0, Cookie="session=alice")
        assert sticky["reason"] == "sticky" and sticky["sticky"]["key"] == "cookie:session"
        assert proxy.explain("/", sample=0.0)["reason"] == "backend", "no key: the weighted pick"
    finally:
        proxy.stop()


def unchanged_status_is_not_written(kubectl: Kubectl, ns: str) -> None:
    """Two passes of the controller (the route's weights patched twice, each status observed) leave the
    policy's status as it was: no write, the same resourceVersion."""
    version = get(kubectl, "trafficpolicy", "sticky", ns)["metadata"]["resourceVersion"]
    for weight in (80, 70):
        patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": weight}]
        kubectl("patch", "httproute", "shop", "-n", ns, "--type=json", "-p", json.dumps(patch))
        eventually(when(kubectl, "httproute", "shop", ns), what=f"the route's status at weight {weight}")
    assert get(kubectl, "trafficpolicy", "sticky", ns)["metadata"]["resourceVersion"] == version
