"""Progressive delivery end to end: the operator's rollout loop on the real control plane, a real kube-mode
proxy that gets its routes from the operator, and real upstream processes with programmable errors and delays.

Intervals are short (1s), windows 4s, minRequests 5. Nothing asserts on time: every wait polls for an outcome.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from kopfharness import OperatorNamespaces, OperatorProcess, free_port
from rolloutrig import (
    Rig,
    analysis,
    condition,
    event_reasons,
    patch_spec,
)
from waiting import eventually

from graylane.cli import kubectl as kubectl_cli


def metrics_flag(rig: Rig) -> tuple[str, str]:
    return ("--proxy-metrics-url", rig.proxy.admin + "/metrics")


def test_healthy_canary_walks_every_step_to_promoted(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    steps = [{"weight": 20, "pause": "2s"}, {"weight": 50, "pause": "2s"}, {"weight": 100}]
    rig.start({"steps": steps, "interval": "1s", "analysis": analysis()})
    rig.load()
    seen_steps: set[int] = set()

    def promoted(s: dict[str, Any]) -> bool:
        seen_steps.add(s.get("currentStep", -1))
        return s.get("phase") == "Promoted"

    status = rig.until(promoted, "the rollout is Promoted")
    assert status["canaryWeight"] == 100 and status["failedChecks"] == 0
    assert {0, 1} <= seen_steps, seen_steps  # step 3 (no pause) may last one check only
    assert status["lastAnalysis"]["verdict"] == "Pass"
    assert status["lastAnalysis"]["canary"]["requests"] >= 5
    rig.served_weight(100)
    reasons = event_reasons(rig.kubectl, rig.ns)
    assert {"RolloutStarted", "StepAdvanced", "Promoted"} <= set(reasons), sorted(reasons)
    assert len(reasons["StepAdvanced"]) == 2
    propagated = condition(rig.until(lambda s: condition(s, "Propagated"), "Propagated"), "Propagated")
    assert propagated is not None and propagated["status"] == "True", propagated
    metrics = condition(rig.status(), "MetricsAvailable")
    assert metrics is not None and metrics["status"] == "True"
    out = io.StringIO()  # `kubectl graylane status` shows the operator's status as a table
    env = {"KUBECTL": str(rig.kubectl.binary), "PATH": ""}
    argv = ["status", "checkout", "-n", rig.ns, "--kubeconfig", str(rig.kubectl.kubeconfig)]
    assert kubectl_cli.main(argv, environ=env, out=out) == 0
    header, row = out.getvalue().splitlines()[:2]
    assert header.split()[:6] == ["NAME", "STABLE", "CANARY", "WEIGHT", "STEP", "PHASE"]
    assert row.split()[:6] == ["checkout", "checkout-v1", "checkout-v2", "100%", "3/3", "Promoted"], row
    # the README's next move: the canary becomes stable, the next version the canary -> a new rollout
    hold = {"steps": [{"weight": 20, "pause": "1h"}, {"weight": 100}]}  # so step 1 can be looked at
    patch_spec(rig.kubectl, rig.ns, {"stable": "checkout-v2", "canary": "checkout-v1", "rollout": hold})
    status = rig.until(lambda s: s.get("canaryRevision", "").startswith("checkout-v1/"), "a new rollout")
    assert status["phase"] == "Progressing" and status["currentStep"] == 0
    entry = rig.served_weight(20)
    assert entry["stable"] == "checkout-v2"
    assert len(event_reasons(rig.kubectl, rig.ns)["RolloutStarted"]) == 2


def test_canary_with_half_errors_is_rolled_back(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 30, "pause": "1h"}, {"weight": 100}], "interval": "1s",
               "analysis": analysis()})  # fmt: skip
    load = rig.load()
    rig.until(lambda s: s.get("lastAnalysis", {}).get("verdict") == "Pass", "a passing check at 30%")
    rig.served_weight(30)
    rig.canary.control(errorRate=0.5)
    status = rig.until(lambda s: s.get("phase") == "RolledBack", "the rollout is RolledBack")
    assert status["canaryWeight"] == 0 and "error rate" in status["message"], status["message"]
    assert status["lastAnalysis"]["verdict"] == "Fail"
    assert status["lastAnalysis"]["canary"]["errorRate"] > 1
    rig.served_weight(0)
    after = time.monotonic()
    eventually(lambda: len([a for a in load.answers if a[0] > after]) >= 50, what="50 answers after rollback")
    assert load.versions_since(after) == {"v1"}
    warnings = event_reasons(rig.kubectl, rig.ns)["RolledBack"]
    assert warnings[0]["type"] == "Warning" and "error rate" in warnings[0]["message"]
    # No flapping once the canary is fine again: a RolledBack rollout is not stepped at all until its spec
    # changes (tests/unit/test_rollout.py, "rolled back stays at 0", checks it without waiting on a clock).
    rig.canary.control(errorRate=0.0)
    assert rig.status()["phase"] == "RolledBack" and rig.proxy.route(rig.key)["weight"] == 0  # type: ignore[index]
    # `kubectl graylane resume` retries (abort, wait for Aborted, clear abort): step 1 again
    env = {"KUBECTL": str(rig.kubectl.binary), "PATH": ""}
    argv = ["resume", "checkout", "-n", rig.ns, "--kubeconfig", str(rig.kubectl.kubeconfig)]
    assert kubectl_cli.main(argv, environ=env, out=io.StringIO()) == 0
    rig.until(lambda s: s.get("phase") == "Progressing" and s.get("currentStep") == 0, "the retry")
    rig.served_weight(30)
    assert "RolloutRetried" in event_reasons(rig.kubectl, rig.ns)


def test_latency_regression_is_rolled_back_by_the_latency_rule(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 30, "pause": "1h"}, {"weight": 100}], "interval": "1s",
               "analysis": analysis(maxErrorRate=50, maxLatencyRatio=3)})  # fmt: skip
    rig.load()
    rig.until(lambda s: s.get("lastAnalysis", {}).get("verdict") == "Pass", "a passing check at 30%")
    rig.canary.control(delayMs=250)
    status = rig.until(lambda s: s.get("phase") == "RolledBack", "the rollout is RolledBack")
    assert "p99" in status["message"] and "stable" in status["message"], status["message"]
    assert "error rate" not in status["message"]
    assert (
        status["lastAnalysis"]["canary"]["p99LatencyMs"]
        > 3 * status["lastAnalysis"]["stable"]["p99LatencyMs"]
    )
    rig.served_weight(0)


def test_abort_mid_rollout_drops_the_canary_to_zero_and_clearing_it_retries(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 10, "pause": "1s"}, {"weight": 40, "pause": "1h"}, {"weight": 100}],
               "interval": "1s", "analysis": analysis()})  # fmt: skip
    rig.load()
    rig.until(lambda s: s.get("currentStep") == 1, "step 2 (40%)")
    rig.served_weight(40)
    patch_spec(rig.kubectl, rig.ns, {"rollout": {"abort": True}})
    status = rig.until(lambda s: s.get("phase") == "Aborted", "the rollout is Aborted")
    assert status["canaryWeight"] == 0
    rig.served_weight(0)
    assert event_reasons(rig.kubectl, rig.ns)["Aborted"][0]["type"] == "Warning"
    patch_spec(rig.kubectl, rig.ns, {"rollout": {"abort": False}})
    status = rig.until(lambda s: s.get("phase") == "Progressing", "the retry starts")
    assert status["currentStep"] == 0
    rig.served_weight(10)
    assert "RolloutRetried" in event_reasons(rig.kubectl, rig.ns)


def test_operator_killed_mid_rollout_resumes_from_status(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    first = start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 10, "pause": "1s"}, {"weight": 40, "pause": "1h"}, {"weight": 100}],
               "interval": "1s", "analysis": analysis()})  # fmt: skip
    rig.load()
    before = rig.until(lambda s: s.get("currentStep") == 1, "step 2 (40%)")
    first.kill()
    started_events = len(event_reasons(rig.kubectl, rig.ns)["RolloutStarted"])
    stamp = before["lastAnalysis"]["at"] if before.get("lastAnalysis") else ""
    start_operator(*metrics_flag(rig))
    after = rig.until(
        lambda s: (
            s.get("lastAnalysis", {}).get("at", "") > stamp and s.get("lastAnalysis", {}).get("verdict")
        ),
        "the restarted operator analyses again",
    )
    assert after["phase"] == "Progressing" and after["currentStep"] == 1 and after["canaryWeight"] == 40
    assert after["stepStartedAt"] == before["stepStartedAt"]  # the pause clock was not restarted
    assert len(event_reasons(rig.kubectl, rig.ns)["RolloutStarted"]) == started_events
    rig.served_weight(40)


def test_without_canary_traffic_there_is_no_verdict_and_no_promotion(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 10}, {"weight": 100}], "interval": "1s", "analysis": analysis()})
    checks: set[str] = set()

    def three_checks(s: dict[str, Any]) -> bool:
        if s.get("lastAnalysis"):
            checks.add(s["lastAnalysis"]["at"])
            assert s["lastAnalysis"]["verdict"] == "Inconclusive", s
        return len(checks) >= 3

    status = rig.until(three_checks, "three checks without traffic")
    assert status["phase"] == "Progressing" and status["currentStep"] == 0 and status["canaryWeight"] == 10
    assert "no verdict" in status["message"] and status["failedChecks"] == 0
    rig.served_weight(10)


def test_unreachable_proxy_metrics_hold_and_set_the_condition(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens: connection refused
    start_operator(*metrics_flag(rig), "--proxy-metrics-url", dead)
    rig.start({"steps": [{"weight": 10}, {"weight": 100}], "interval": "1s", "analysis": analysis()})
    rig.load()
    status = rig.until(lambda s: s.get("metricsUnavailable") is True, "metricsUnavailable")
    assert status["phase"] == "Progressing" and status["currentStep"] == 0 and status["canaryWeight"] == 10
    assert status["consecutiveScrapeErrors"] >= 4 and "scraping" in status["message"]
    metrics = condition(status, "MetricsAvailable")
    assert metrics is not None and metrics["status"] == "False" and dead in metrics["message"]
    propagated = condition(status, "Propagated")
    assert propagated is not None and propagated["status"] == "False"
    assert event_reasons(rig.kubectl, rig.ns)["MetricsUnavailable"][0]["type"] == "Warning"
    rig.served_weight(10)


def test_manual_weight_patch_pauses_the_rollout_and_setting_it_back_resumes(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 10, "pause": "1h"}, {"weight": 100}], "interval": "1s",
               "analysis": analysis()})  # fmt: skip
    rig.load()
    rig.until(lambda s: s.get("phase") == "Progressing", "Progressing")
    patch_spec(rig.kubectl, rig.ns, {"weight": 35})
    status = rig.until(lambda s: s.get("phase") == "Paused", "Paused by the manual weight")
    assert status["canaryWeight"] == 35 and "by hand" in status["message"]
    rig.served_weight(35)
    patch_spec(rig.kubectl, rig.ns, {"weight": 0})  # back to the value recorded at the start
    status = rig.until(lambda s: s.get("phase") == "Progressing", "resumed")
    assert status["currentStep"] == 0
    rig.served_weight(10)
    patch_spec(rig.kubectl, rig.ns, {"weight": 100})  # 100 by hand promotes at once
    rig.until(lambda s: s.get("phase") == "Promoted", "Promoted by hand")
    rig.served_weight(100)


def test_proxies_are_found_from_the_admin_service_endpointslices(
    rig: Rig, start_operator: Callable[..., OperatorProcess], operator_ns: OperatorNamespaces
) -> None:
    """In a cluster the operator scrapes every ready endpoint of the chart's admin Service's EndpointSlices.

    The API server refuses loopback addresses in EndpointSlices, so the ready endpoint is a TEST-NET address
    nothing answers on: the proof is that the operator tries exactly that URL (and holds), and skips the
    endpoint that is not ready.
    """
    service = "graylane-proxy-admin"
    slices = [
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"{service}-{i}", "namespace": operator_ns.config,
                      "labels": {"kubernetes.io/service-name": service}},
         "addressType": "IPv4", "ports": [{"name": "admin", "port": 9901, "protocol": "TCP"}],
         "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}]}
        for i, (address, ready) in enumerate((("192.0.2.10", True), ("192.0.2.11", False)))
    ]  # fmt: skip
    rig.kubectl.apply(slices)
    start_operator("--proxy-service", service, "--scrape-timeout", "0.5")
    rig.start({"steps": [{"weight": 30}, {"weight": 100}], "interval": "1s", "analysis": analysis()})
    rig.load()
    status = rig.until(lambda s: s.get("consecutiveScrapeErrors", 0) >= 2, "failed scrapes of the endpoint")
    metrics = condition(status, "MetricsAvailable")
    assert metrics is not None and "http://192.0.2.10:9901/metrics" in metrics["message"], metrics
    assert "192.0.2.11" not in metrics["message"]
    propagated = condition(status, "Propagated")
    assert propagated is not None and "0/1 proxies" in propagated["message"], propagated
    assert status["phase"] == "Progressing" and status["currentStep"] == 0  # held: no promotion unseen


def test_only_the_active_replica_runs_the_rollout_and_a_takeover_resumes_it(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "gl", "namespace": rig.ns},
    }
    rig.kubectl.apply(peering)
    high = start_operator(*metrics_flag(rig), "--peering", "gl", "--priority", "100")
    eventually(
        lambda: rig.kubectl.json("get", "kopfpeering", "gl", "-n", rig.ns).get("status") or {},
        what="the first replica registers in the peering object",
    )
    low = start_operator(*metrics_flag(rig), "--peering", "gl", "--priority", "50")
    eventually(
        lambda: len(rig.kubectl.json("get", "kopfpeering", "gl", "-n", rig.ns).get("status") or {}) == 2,
        what="the second replica registers too (outranked: paused)",
    )
    rig.start({"steps": [{"weight": 10, "pause": "1s"}, {"weight": 30, "pause": "4s"}, {"weight": 100}],
               "interval": "1s", "analysis": analysis()})  # fmt: skip
    rig.load()
    rig.until(lambda s: s.get("currentStep") == 1, "step 2 (30%) by the active replica")
    assert "StepAdvanced" in high.log() and "Rollout " not in low.log()
    high.stop()  # graceful: its peering entry goes, the other replica takes over
    rig.until(lambda s: s.get("phase") == "Promoted", "the other replica finishes the rollout")
    assert "Promoted" in low.log() and "RolloutStarted" not in low.log()  # resumed, not restarted
    rig.served_weight(100)


def test_an_invalid_rollout_sends_nothing_to_the_canary_and_removing_it_restores_spec_weight(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    rig.start({"steps": [{"weight": 50}, {"weight": 10}], "interval": "1s"}, weight=5)  # decreasing
    status = rig.until(lambda s: s.get("phase") == "Invalid", "phase Invalid")
    assert "spec.rollout.steps[1].weight" in status["message"], status["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidRollout"), ready
    assert "spec.rollout.steps[1].weight" in ready["message"], ready
    rig.served_weight(0)
    rig.kubectl("patch", "canaryroute", "checkout", "-n", rig.ns, "--type=json",
                "-p", '[{"op":"remove","path":"/spec/rollout"}]')  # fmt: skip
    status = rig.until(lambda s: s.get("phase") == "Ready", "phase Ready without a rollout")
    assert "message" not in status and "currentStep" not in status
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
    rig.served_weight(5)
