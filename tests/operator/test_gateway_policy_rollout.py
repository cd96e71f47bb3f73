# ruff: noqa: E501  (one-line manifests read better than wrapped ones)
"""A TrafficPolicy ``rollout`` against the real kube-apiserver, the real operator and a real kube-mode Gateway
proxy carrying real requests: the operator scrapes the proxy's ``/metrics`` (its ``rule-0.canary`` /
``rule-0.stable`` tracks), ramps the canary backendRef's share of the rule step by step, promotes it, and
rolls a failing one back to 0 -- the percent compiled into the route's document, the state in
``status.rollout``, Events on the policy.

Without a node the backends' Service names do not resolve, so the proxy answers every request 502 itself (a
real upstream failure): with ``maxErrorRate: 100`` every check passes (the ramp), with the default 1 the
canary fails (the rollback)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from cluster.podstack import SteadyLoad
from gatewayrig import GatewayProxy, gateway, get, http_route, service
from kopfharness import OperatorNamespaces
from test_gateway_policy_operator import document, policy
from waiting import eventually

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
ANALYSIS = {"window": "3s", "minRequests": 5, "failureThreshold": 1}


def web_route() -> dict[str, Any]:
    return http_route("web", [
        {"name": "main", "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "web-v1", "port": 8080, "weight": 1}, {"name": "web-v2", "port": 8080, "weight": 1}]},
    ])  # fmt: skip


def weights(kubectl: Kubectl, cfg: str) -> list[int] | None:
    doc = document(kubectl, cfg, "web")
    return (
        [b["weight"] for b in doc["httpRules"][0]["backends"]]
        if doc and "canary" in doc["httpRules"][0]
        else None
    )


def rollout_of(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    return dict((get(kubectl, "trafficpolicy", name, ns).get("status") or {}).get("rollout") or {})


def reasons(kubectl: Kubectl, ns: str, name: str) -> list[str]:
    found = kubectl.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
    return [e["reason"] for e in found["items"] if e["involvedObject"]["kind"] == "TrafficPolicy"]


def setup(kubectl: Kubectl, ns: str, cfg: str, kubeconfig: Path, tmp_path: Path, start_operator: Any,
          klass: str, **spec: Any) -> GatewayProxy:  # fmt: skip
    """The route, its Gateway and the policy; a kube-mode proxy of that Gateway; the operator scraping it."""
    kubectl.apply([service("web-v1"), service("web-v2"), gateway("gw", klass), web_route(),
                   policy("ramp", "web", "main", **spec)], "-n", ns)  # fmt: skip
    proxy = GatewayProxy.of(
        get(kubectl, "gateway", "gw", ns), cfg, kubeconfig, tmp_path / "gateway-proxy.log"
    )
    start_operator("--gateway-api", "--proxy-metrics-url", proxy.admin + "/metrics")
    return proxy


def test_a_passing_canary_is_ramped_and_promoted(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: Any, klass: str, kubeconfig: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ns, cfg = operator_ns.routes, operator_ns.config
    steps = [{"weight": 10}, {"weight": 50}, {"weight": 100}]
    rollout = {
        "canary": "web-v2",
        "steps": steps,
        "interval": "1s",
        "analysis": {**ANALYSIS, "maxErrorRate": 100},
    }
    proxy = setup(kubectl, ns, cfg, kubeconfig, tmp_path, start_operator, klass, rollout=rollout)
    try:
        assert eventually(lambda: weights(kubectl, cfg), what="the first step compiled") in (
            [9000, 1000],
            [5000, 5000],
            [0, 10000],
        )
        eventually(lambda: proxy.route(f"{ns}/web"), what="the route served by the Gateway proxy")
        seen: list[float] = []

        def promoted() -> dict[str, Any] | None:
            found = rollout_of(kubectl, ns, "ramp")
            seen.append(found.get("canaryWeight", -1))
            return found if found.get("phase") == "Promoted" else None

        with SteadyLoad("127.0.0.1", proxy.port, headers={"Host": "gw.test"}) as load:
            final = eventually(promoted, what="Promoted", within=120)
        assert sum(load.lost.values()) > 0, (
            "every request was answered by the proxy (502: no backend resolves)"
        )
        assert final["canaryWeight"] == 100 and final["lastAnalysis"]["verdict"] == "Pass", final
        assert final["lastAnalysis"]["canary"]["requests"] >= 5, final["lastAnalysis"]
        eventually(lambda: weights(kubectl, cfg) == [0, 10000], what="the canary alone in the document")
        ramp = [w for w in dict.fromkeys(seen) if w >= 0]
        assert ramp == sorted(ramp) and ramp[-1] == 100 and len(ramp) >= 2, f"never lower, in steps: {ramp}"
        said = reasons(kubectl, ns, "ramp")
        assert {"RolloutStarted", "StepAdvanced", "Promoted"} <= set(said), said
        metrics = proxy_metrics(proxy)
        assert f'route="{ns}/web",track="rule-0.canary"' in metrics, "the canary's own track label"
    finally:
        proxy.stop()


def test_a_failing_canary_is_rolled_back_and_the_route_keeps_its_shape(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: Any, klass: str, kubeconfig: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ns, cfg = operator_ns.routes, operator_ns.config
    rollout = {
        "canary": "web-v2:8080",
        "steps": [{"weight": 40}, {"weight": 100}],
        "interval": "1s",
        "analysis": ANALYSIS,
    }
    sticky = {"keys": ["header:X-User"]}  # stays when the rollout goes (a policy must change something)
    proxy = setup(
        kubectl, ns, cfg, kubeconfig, tmp_path, start_operator, klass, rollout=rollout, sticky=sticky
    )
    try:
        eventually(lambda: weights(kubectl, cfg) == [6000, 4000], what="the first step compiled")
        eventually(lambda: proxy.route(f"{ns}/web"), what="the route served by the Gateway proxy")
        with SteadyLoad("127.0.0.1", proxy.port, headers={"Host": "gw.test"}):
            final = eventually(lambda: (r := rollout_of(kubectl, ns, "ramp")).get("phase") == "RolledBack" and r,
                               what="RolledBack", within=120)  # fmt: skip
        assert final["canaryWeight"] == 0 and final["lastAnalysis"]["verdict"] == "Fail", final
        eventually(lambda: weights(kubectl, cfg) == [10000, 0], what="weight 0 compiled for the canary")
        assert "RolledBack" in reasons(kubectl, ns, "ramp")
        route = get(kubectl, "httproute", "web", ns)
        assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [1, 1], (
            "the HTTPRoute is not written"
        )

        kubectl(
            "patch",
            "trafficpolicy",
            "ramp",
            "-n",
            ns,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"rollout": None}}),
        )
        eventually(
            lambda: not rollout_of(kubectl, ns, "ramp"), what="status.rollout removed with the rollout"
        )
        doc = eventually(lambda: (d := document(kubectl, cfg, "web")) and "canary" not in d["httpRules"][0] and d,
                         what="the route's own weights again")  # fmt: skip
        assert [b["weight"] for b in doc["httpRules"][0]["backends"]] == [1, 1]
    finally:
        proxy.stop()


def proxy_metrics(proxy: GatewayProxy) -> str:
    with urllib.request.urlopen(proxy.admin + "/metrics", timeout=5) as resp:
        return str(resp.read().decode())
