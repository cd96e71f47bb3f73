# ruff: noqa: E501  (one-line manifests read better than wrapped ones)
"""A TrafficPolicy rollout on the node, as users run it: the chart with ``gatewayAPI.enabled`` (its operator
and the Gateway's provisioned proxy as pods), the demo backends v1 and v2 as pods behind Services, an
HTTPRoute to both and a policy ramping v2. The operator pod finds the Gateway's proxy pods through the
Gateway Service's EndpointSlices, judges v2 on their metrics while real requests flow through the Gateway's
address, promotes it; once v2 fails every request, a retried rollout is rolled back to 0.

Its own release and namespaces, uninstalled afterwards (like the suite's): the tiers after this one find the
node as before."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.controlplane import ControlPlane
from cluster.kubectl import Kubectl
from cluster.pods import wait_pods
from cluster.podstack import BACKEND_PORT, SteadyLoad, backend_manifests, restricted_namespace
from cluster.stack import http_get, wait_until

from conformance import run

NAMESPACE, RELEASE, APPS = "graylane-gwrollout", "gwroll", "gwroll-apps"
GROUP = "gateway.networking.k8s.io"


@pytest.fixture
def stack(cluster_plane: ControlPlane | None, kubectl: Kubectl, helm_bin: Path) -> Iterator[str]:
    """The chart (Gateway API on) and the backends; yields the image tag."""
    if cluster_plane is None or not cluster_plane.node:
        pytest.fail(
            "a Gateway rollout on pods needs the local cluster with its node (GRAYLANE_NODE=0 was set)"
        )
    try:
        tag = run.prepare(kubectl, helm_bin, Path(cluster_plane.state_dir), time.monotonic(), namespace=NAMESPACE,
                          release=RELEASE)  # fmt: skip
        restricted_namespace(kubectl, APPS)
        kubectl.apply([m for v in ("v1", "v2") for m in backend_manifests(v, tag=tag)], "-n", APPS)
        for version in ("v1", "v2"):
            wait_pods(kubectl, APPS, f"app=checkout,version={version}", timeout=180)
        yield tag
    finally:
        subprocess.run([str(helm_bin), "--kubeconfig", str(kubectl.kubeconfig), "uninstall", RELEASE, "--namespace",
                        NAMESPACE, "--wait", "--timeout", "2m"], check=False, timeout=180)  # fmt: skip
        for ns in (APPS, NAMESPACE):
            kubectl(
                "delete", "namespace", ns, "--wait=true", "--timeout=120s", "--ignore-not-found", check=False
            )


def manifests() -> list[dict[str, Any]]:
    gateway = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {
            "gatewayClassName": "graylane",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    route = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "checkout"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "name": "main",
                    "backendRefs": [
                        {"name": "checkout-v1", "port": BACKEND_PORT, "weight": 1},
                        {"name": "checkout-v2", "port": BACKEND_PORT, "weight": 1},
                    ],
                }
            ],
        },
    }
    policy = {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "TrafficPolicy",
        "metadata": {"name": "ramp"},
        "spec": {
            "targetRefs": [{"group": GROUP, "kind": "HTTPRoute", "name": "checkout", "sectionName": "main"}],
            "sticky": {"keys": ["header:X-User"]},
            "rollout": {
                "canary": "checkout-v2",
                "interval": "1s",
                "steps": [{"weight": 20, "pause": "2s"}, {"weight": 50, "pause": "2s"}, {"weight": 100}],
                "analysis": {"window": "4s", "minRequests": 10, "failureThreshold": 2},
            },
        },
    }
    return [gateway, route, policy]  # fmt: skip


def rollout(kubectl: Kubectl) -> dict[str, Any]:
    found = kubectl.json("get", "trafficpolicy", "ramp", "-n", APPS)
    return dict((found.get("status") or {}).get("rollout") or {})


def gateway_address(kubectl: Kubectl) -> str:
    def address() -> str | None:
        status = kubectl.json("get", "gateway", "gw", "-n", APPS).get("status") or {}
        programmed = any(
            c["type"] == "Programmed" and c["status"] == "True" for c in status.get("conditions") or []
        )
        value = (status.get("addresses") or [{}])[0].get("value")
        return str(value) if programmed and value else None

    return str(wait_until("the Gateway programmed, with an address", address, timeout=240, every=0.5))


def set_error_rate(kubectl: Kubectl, version: str, rate: float) -> None:
    ip = kubectl.json("get", "service", f"checkout-{version}", "-n", APPS)["spec"]["clusterIP"]
    request = urllib.request.Request(f"http://{ip}:{BACKEND_PORT}/__control", method="POST",
                                     data=json.dumps({"errorRate": rate}).encode())  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def phase(kubectl: Kubectl, wanted: str, timeout: float = 240) -> dict[str, Any]:
    return dict(
        wait_until(
            wanted, lambda: (r := rollout(kubectl)).get("phase") == wanted and r, timeout=timeout, every=0.5
        )
    )


@pytest.mark.timeout(900)
def test_a_gateway_canary_is_promoted_then_a_failing_one_rolled_back(stack: str, kubectl: Kubectl) -> None:
    kubectl.apply(manifests(), "-n", APPS)
    address = gateway_address(kubectl)
    wait_until("the Gateway's proxy serves the route", lambda: answered(address), timeout=120, every=0.2)
    with SteadyLoad(address, 80, headers={"Host": "checkout.example"}) as load:
        promoted = phase(kubectl, "Promoted")
    assert promoted["canaryWeight"] == 100 and promoted["lastAnalysis"]["verdict"] == "Pass", promoted
    assert promoted["lastAnalysis"]["canary"]["requests"] >= 10, promoted["lastAnalysis"]
    assert load.versions["v1"] > 0 and load.versions["v2"] > 0, load.versions
    assert not load.lost, f"no request lost while the weights moved: {load.lost}"

    set_error_rate(kubectl, "v2", 1.0)
    abort(kubectl, True)
    phase(kubectl, "Aborted", timeout=60)
    with SteadyLoad(address, 80, headers={"Host": "checkout.example"}) as load:
        abort(kubectl, False)  # retry the same canary from step 1
        rolled = phase(kubectl, "RolledBack")
    assert rolled["canaryWeight"] == 0 and rolled["lastAnalysis"]["verdict"] == "Fail", rolled
    assert load.lost, "v2 answered 500 while it had a share"
    wait_until("20 answers in a row from v1 (the rollback served)", lambda: v1_only(address, 20), timeout=60)


def abort(kubectl: Kubectl, value: bool) -> None:
    patch = {"spec": {"rollout": {"abort": value}}}
    kubectl("patch", "trafficpolicy", "ramp", "-n", APPS, "--type=merge", "-p", json.dumps(patch))


def answered(address: str) -> bytes | None:
    """The body of a 200 through the Gateway, or None (refused while its Service and pod come up)."""
    try:
        status, body = http_get(f"http://{address}/", {"Host": "checkout.example"}, timeout=2)
    except OSError:
        return None
    return body.strip() if status == 200 else None


def v1_only(address: str, count: int) -> bool:
    return all(answered(address) == b"v1" for _ in range(count))
