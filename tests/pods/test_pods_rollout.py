"""Progressive delivery on pods: the operator *pod* scrapes every proxy pod through the admin Service's
EndpointSlices (the chart's ``--proxy-service``), promotes a healthy canary and rolls a failing one back."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from cluster.podstack import PodStack, SteadyLoad
from cluster.stack import wait_until

ROLLOUT_HOST = "rollout.example.com"


def rollout_route(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": name},
        "spec": {"hosts": [f"{name}.{ROLLOUT_HOST}"], "stable": "checkout-v1", "canary": "checkout-v2",
                 "weight": 0,
                 "rollout": {"steps": [{"weight": 20, "pause": "3s"}, {"weight": 50, "pause": "3s"},
                                       {"weight": 100}],
                             "interval": "1s",
                             "analysis": {"window": "4s", "minRequests": 10, "failureThreshold": 2}}},
    }  # fmt: skip


def set_backend(pods: PodStack, version: str, **knobs: float) -> None:
    request = urllib.request.Request(
        pods.backend_url(version) + "/__control", data=json.dumps(knobs).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def status(kubectl: Kubectl, pods: PodStack, name: str) -> dict[str, Any]:
    return dict(kubectl.json("get", "canaryroute", name, "-n", pods.apps).get("status") or {})


@pytest.fixture
def healthy_canary(pods: PodStack) -> Iterator[None]:
    set_backend(pods, "v2", errorRate=0.0)
    yield
    set_backend(pods, "v2", errorRate=0.0)


def test_a_healthy_canary_is_promoted(pods: PodStack, kubectl: Kubectl, healthy_canary: None) -> None:
    kubectl.apply(rollout_route("promote"), "-n", pods.apps)
    try:
        headers = {"Host": f"promote.{ROLLOUT_HOST}"}
        with SteadyLoad(*pods.proxy_address, headers=headers) as load:
            final = wait_until(
                "Promoted",
                lambda: (s := status(kubectl, pods, "promote")).get("phase") == "Promoted" and s,
                timeout=180,
            )
        assert final["canaryWeight"] == 100 and final["lastAnalysis"]["verdict"] == "Pass", final
        conditions = {c["type"]: c for c in final["conditions"]}
        assert conditions["MetricsAvailable"]["status"] == "True", conditions["MetricsAvailable"]
        assert not load.lost and load.versions["v2"] > 0, (load.lost, load.versions)
        pods.wait_weight(f"{pods.apps}/promote", 100)
    finally:
        kubectl("delete", "canaryroute", "promote", "-n", pods.apps)


def test_a_failing_canary_is_rolled_back(pods: PodStack, kubectl: Kubectl, healthy_canary: None) -> None:
    set_backend(pods, "v2", errorRate=1.0)
    kubectl.apply(rollout_route("rollback"), "-n", pods.apps)
    try:
        headers = {"Host": f"rollback.{ROLLOUT_HOST}"}
        with SteadyLoad(*pods.proxy_address, headers=headers):
            final = wait_until(
                "RolledBack",
                lambda: (s := status(kubectl, pods, "rollback")).get("phase") == "RolledBack" and s,
                timeout=180,
            )
        assert final["canaryWeight"] == 0 and final["lastAnalysis"]["verdict"] == "Fail", final
        pods.wait_weight(f"{pods.apps}/rollback", 0)
        answers = {pods.get("/", {"Host": f"rollback.{ROLLOUT_HOST}"})[1].decode().strip() for _ in range(30)}
        assert answers == {"v1"}
    finally:
        kubectl("delete", "canaryroute", "rollback", "-n", pods.apps)
