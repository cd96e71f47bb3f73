"""Shadow steps on the real control plane (issue 16): a rollout that starts with ``{mirror: 100, pause}``
keeps the canary weight at 0 while the operator judges the canary on mirrored traffic, scraped from a real
kube-mode proxy in front of real upstream processes. One shadow step promotes; one rolls back on mismatches
(the canary answers 404 to half the copies: a mismatch, not an error, so the mismatch rule is what fails it).
No user is routed to the canary in either. Nothing asserts on time: every wait polls for an outcome.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from kopfharness import OperatorProcess
from rolloutrig import Rig, analysis, event_reasons
from waiting import eventually


def metrics_flag(rig: Rig) -> tuple[str, str]:
    return ("--proxy-metrics-url", rig.proxy.admin + "/metrics")


def served(rig: Rig, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The proxy's ``/routes`` entry for the route once ``check`` holds for it."""
    return eventually(lambda: (r := rig.proxy.route(rig.key)) and check(r) and r, what=what, within=60)


def canary_served(rig: Rig) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{rig.canary.port}/__control", timeout=5) as resp:
        return sum(json.loads(resp.read())["served"].values())


def test_a_shadow_step_judges_the_mirrored_canary_and_promotes(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    steps = [{"mirror": 100, "pause": "3s"}, {"weight": 100}]
    rig.start({"steps": steps, "interval": "1s", "analysis": analysis(maxMismatchRate=5)})
    load = rig.load()
    entry = served(rig, lambda r: r["mirror"] == 100, "the proxy mirrors 100%")
    assert entry["weight"] == 0
    shadow = rig.until(
        lambda s: s.get("mirrorPercent") == 100 and (s.get("lastAnalysis") or {}).get("verdict") == "Pass",
        "a passing check in the shadow step",
    )
    seen_in_shadow = time.monotonic()
    assert shadow["canaryWeight"] == 0 and shadow["currentStep"] == 0
    mirror = shadow["lastAnalysis"]["mirror"]
    assert mirror["requests"] >= 5 and mirror["mismatchRate"] == 0 and mirror["errorRate"] == 0
    assert shadow["lastAnalysis"]["canary"]["requests"] == 0  # no user traffic reached the canary
    assert canary_served(rig) >= 5  # but the mirrored copies did
    before = {version for at, version, _ in list(load.answers) if at < seen_in_shadow}
    assert "v1" in before and "v2" not in before  # ('?': a 404 before the proxy had the route)
    status = rig.until(lambda s: s.get("phase") == "Promoted", "the rollout is Promoted")
    assert status["canaryWeight"] == 100 and status.get("mirrorPercent") is None
    entry = served(rig, lambda r: r["weight"] == 100, "the proxy serves weight 100")
    assert entry["mirror"] is None  # the shadow step is over: nothing is mirrored any more
    reasons = event_reasons(rig.kubectl, rig.ns)
    started = reasons["RolloutStarted"][0]["message"]
    assert "shadow: 100% mirrored, weight 0%" in started, started
    assert {"StepAdvanced", "Promoted"} <= set(reasons)


def test_a_shadow_step_with_mismatching_answers_rolls_back_before_any_user_sees_the_canary(
    rig: Rig, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(*metrics_flag(rig))
    steps = [{"mirror": 100, "pause": "1h"}, {"weight": 100}]
    rig.start({"steps": steps, "interval": "1s", "analysis": analysis(maxMismatchRate=10)})
    load = rig.load()
    rig.until(lambda s: (s.get("lastAnalysis") or {}).get("verdict") == "Pass", "a passing shadow check")
    rig.canary.control(errorRate=0.5, errorStatus=404)  # different answers, but no errors
    status = rig.until(lambda s: s.get("phase") == "RolledBack", "the rollout is RolledBack")
    message = status["message"]
    assert "mismatch rate" in message and "error rate" not in message, message
    assert "no user was routed to the canary" in message
    figures = status["lastAnalysis"]["mirror"]
    assert figures["mismatchRate"] > 10 and figures["errorRate"] == 0
    assert status["canaryWeight"] == 0 and status.get("mirrorPercent") is None
    served(rig, lambda r: r["mirror"] is None and r["weight"] == 0, "the proxy stops mirroring")
    answered = {version for _, version, _ in list(load.answers)}
    assert "v1" in answered and "v2" not in answered  # no user ever got the canary
    warning = event_reasons(rig.kubectl, rig.ns)["RolledBack"][0]
    assert warning["type"] == "Warning" and "mismatch" in warning["message"]
