"""A rollout end to end as the chart deploys it: the operator with the chart's args and ServiceAccount token.

The chart makes the operator find the proxies from the admin Service's EndpointSlices (``--proxy-service``).
There is no kubelet here, so that Service has no endpoints; the local proxy is added with
``--proxy-metrics-url``. The chart's RBAC must let the operator list those EndpointSlices (a refusal would
fail every scrape and hold the rollout), write the route status and post the rollout's Events.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from cluster.stack import BIN, LocalStack, http_get, installed, spawn, upstream_manifest, wait_until

NS = "e2e-rollout"


@pytest.fixture
def stack(kubectl: Kubectl, helm_bin: Path, tmp_path: Path) -> Iterator[LocalStack]:
    s = LocalStack(
        kubectl=kubectl, helm=helm_bin, workdir=tmp_path, namespace="graylane-rollout", watch=(NS,)
    )
    with installed(s):
        yield s


def start_operator(stack: LocalStack, *extra: str) -> None:
    args = [a for a in stack.container_args("operator") if not a.startswith(("--priority", "--liveness"))]
    assert any(a.startswith("--proxy-service=") for a in args), args
    kube = stack.token_kubectl("operator")
    env = {"KUBECONFIG": str(kube.kubeconfig), "POD_NAMESPACE": stack.namespace, "POD_ID": "operator"}
    argv = [str(BIN / "graylane-operator"), *args, "--priority=100", *extra]
    stack.procs["operator"] = spawn("operator", argv, logs=stack.workdir / "logs", env=env)


def route_status(stack: LocalStack) -> dict[str, Any]:
    return dict(stack.kubectl.json("get", "canaryroute", "checkout", "-n", NS).get("status") or {})


def test_a_rollout_is_promoted_with_the_charts_rights(stack: LocalStack) -> None:
    v1, v2 = stack.start_upstream("v1"), stack.start_upstream("v2")
    port, admin = stack.start_proxy()
    start_operator(stack, f"--proxy-metrics-url=http://127.0.0.1:{admin}/metrics")
    upstreams = [upstream_manifest("checkout-v1", v1, "v1"), upstream_manifest("checkout-v2", v2, "v2")]
    stack.kubectl.apply(upstreams, "-n", NS)
    route = {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": "checkout"},
        "spec": {"stable": "checkout-v1", "canary": "checkout-v2", "weight": 0,
                 "rollout": {"steps": [{"weight": 25, "pause": "1s"}, {"weight": 100}], "interval": "1s",
                             "analysis": {"window": "4s", "minRequests": 5}}},
    }  # fmt: skip
    stack.kubectl.apply(route, "-n", NS)
    stop = threading.Event()

    def load() -> None:
        for _ in range(20_000):
            if stop.is_set():
                return
            with contextlib.suppress(urllib.error.URLError, OSError):  # the load only has to keep coming
                http_get(f"http://127.0.0.1:{port}/")
            stop.wait(0.005)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        status = wait_until(
            "Promoted", lambda: (s := route_status(stack)).get("phase") == "Promoted" and s, timeout=90
        )
    finally:
        stop.set()
        loader.join(timeout=10)
    conditions = {c["type"]: c for c in status["conditions"]}
    # listing the EndpointSlices was allowed: a refusal would have failed every scrape (no promotion)
    assert conditions["MetricsAvailable"]["status"] == "True", conditions["MetricsAvailable"]
    assert conditions["MetricsAvailable"]["message"].startswith(
        "0 consecutive failed scrapes; last: scrapes succeed"
    )
    assert conditions["Propagated"]["status"] == "True", conditions["Propagated"]
    assert status["canaryWeight"] == 100 and status["lastAnalysis"]["verdict"] == "Pass"
    _, body = http_get(f"http://127.0.0.1:{admin}/routes")
    assert [r["weight"] for r in json.loads(body)["routes"] if r["route"] == f"{NS}/checkout"] == [100]
    events = stack.kubectl.json("get", "events", "-n", NS, "--field-selector", "involvedObject.name=checkout")
    assert {"RolloutStarted", "StepAdvanced", "Promoted"} <= {e["reason"] for e in events["items"]}
