"""Parsing ``spec.rollout``: defaults, durations, and every rejection with its field path."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.rollout.machine import AnalysisSpec, RolloutSpec, RolloutSpecError, Step, parse_rollout_spec
from graylane.rollout.spec import parse_duration

ISSUE_EXAMPLE = {
    "steps": [
        {"weight": 1, "pause": "2m"},
        {"weight": 10, "pause": "5m"},
        {"weight": 50, "pause": "5m"},
        {"weight": 100},
    ],
    "interval": "10s",
    "analysis": {
        "window": "1m",
        "maxErrorRate": 1,
        "maxP99LatencyMs": 500,
        "maxLatencyRatio": 1.5,
        "minRequests": 50,
        "failureThreshold": 2,
    },
    "paused": False,
    "abort": False,
}


def test_the_issue_example_parses() -> None:
    assert parse_rollout_spec(ISSUE_EXAMPLE) == RolloutSpec(
        steps=(Step(1, 120), Step(10, 300), Step(50, 300), Step(100, 0)),
        interval_seconds=10,
        analysis=AnalysisSpec(60, 1.0, 500.0, 1.5, 50, 2),
        paused=False,
        abort=False,
    )


def test_defaults() -> None:
    spec = parse_rollout_spec({"steps": [{"weight": 5}]})
    assert spec == RolloutSpec(steps=(Step(5.0, 0.0),))
    assert spec.interval_seconds == 10 and spec.analysis == AnalysisSpec()
    assert spec.analysis.max_error_rate == 1.0 and spec.analysis.max_p99_latency_ms is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("500ms", 0.5), ("1.5s", 1.5), ("0s", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "-1s", "1d", "1m 30s", "1e3s", "10S", "Infs"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def with_(path: str, value: Any) -> dict[str, Any]:
    """ISSUE_EXAMPLE with one field replaced (``value`` ``...`` deletes it)."""
    doc: dict[str, Any] = {
        **ISSUE_EXAMPLE,
        "analysis": dict(ISSUE_EXAMPLE["analysis"]),
        "steps": [dict(s) for s in ISSUE_EXAMPLE["steps"]],
    }
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return doc


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        # --- the whole object ---
        (None, "spec.rollout", "must be an object"),
        ([], "spec.rollout", "must be an object"),
        (with_("steps", ...), "spec.rollout.steps", "required"),
        (with_("extra", 1), "spec.rollout.extra", "unknown field"),
        # --- steps ---
        (with_("steps", []), "spec.rollout.steps", "at least 1"),
        (with_("steps", "1,10,100"), "spec.rollout.steps", "must be a list"),
        (with_("steps", [{"weight": 1}] * 101), "spec.rollout.steps", "at most 100"),
        (
            with_("steps.1.weight", 0.5),
            "spec.rollout.steps[1].weight",
            "not be lower than the step before (1)",
        ),
        (with_("steps.1.weight", 101), "spec.rollout.steps[1].weight", "between 0 and 100"),
        (with_("steps.1.weight", -1), "spec.rollout.steps[1].weight", "between 0 and 100"),
        (with_("steps.1.weight", "10"), "spec.rollout.steps[1].weight", "must be a number"),
        (with_("steps.1.weight", True), "spec.rollout.steps[1].weight", "must be a number"),
        (with_("steps.1.weight", float("nan")), "spec.rollout.steps[1].weight", "between"),
        (with_("steps.1.weight", 10.125), "spec.rollout.steps[1].weight", "two decimals"),
        (with_("steps.1.weight", ...), "spec.rollout.steps[1].weight", "required"),
        (with_("steps.2.pause", "5 minutes"), "spec.rollout.steps[2].pause", "not a duration"),
        (with_("steps.2.pause", 300), "spec.rollout.steps[2].pause", "not a duration"),
        (with_("steps.2.pause", "8d"), "spec.rollout.steps[2].pause", "not a duration"),
        (with_("steps.2.pause", "169h"), "spec.rollout.steps[2].pause", "between 0s and 604800s"),
        (with_("steps.0.wait", "1m"), "spec.rollout.steps[0].wait", "unknown field"),
        (with_("steps.0", 5), "spec.rollout.steps[0]", "must be an object"),
        # --- interval, flags ---
        (with_("interval", "500ms"), "spec.rollout.interval", "between 1s and 3600s"),
        (with_("interval", "2h"), "spec.rollout.interval", "between 1s and 3600s"),
        (with_("paused", "yes"), "spec.rollout.paused", "true or false"),
        (with_("abort", 1), "spec.rollout.abort", "true or false"),
        # --- analysis ---
        (with_("analysis", []), "spec.rollout.analysis", "must be an object"),
        (with_("analysis.window", "0s"), "spec.rollout.analysis.window", "between 1s"),
        (with_("analysis.maxErrorRate", 101), "spec.rollout.analysis.maxErrorRate", "between 0 and 100"),
        (with_("analysis.maxP99LatencyMs", 0), "spec.rollout.analysis.maxP99LatencyMs", "between"),
        (with_("analysis.maxLatencyRatio", 0.5), "spec.rollout.analysis.maxLatencyRatio", "between 1 and"),
        (with_("analysis.minRequests", 0), "spec.rollout.analysis.minRequests", "between 1 and"),
        (with_("analysis.minRequests", 2.5), "spec.rollout.analysis.minRequests", "must be an integer"),
        (with_("analysis.failureThreshold", 0), "spec.rollout.analysis.failureThreshold", "between 1 and"),
        (with_("analysis.maxErrorRatio", 1), "spec.rollout.analysis.maxErrorRatio", "unknown field"),
    ],
)
def test_rejections_name_the_field(raw: Any, path: str, fragment: str) -> None:
    with pytest.raises(RolloutSpecError) as info:
        parse_rollout_spec(raw)
    assert [e.path for e in info.value.errors] == [path], info.value.errors
    assert fragment in info.value.errors[0].message
    assert path in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    raw = with_("steps.1.weight", 200) | {"interval": "soon", "paused": None}
    with pytest.raises(RolloutSpecError) as info:
        parse_rollout_spec(raw)
    assert {e.path for e in info.value.errors} == {
        "spec.rollout.steps[1].weight",
        "spec.rollout.interval",
        "spec.rollout.paused",
    }


def test_custom_path_prefix() -> None:
    with pytest.raises(RolloutSpecError) as info:
        parse_rollout_spec({"steps": [{"weight": 500}]}, path="rollout")
    assert info.value.errors[0].path == "rollout.steps[0].weight"
