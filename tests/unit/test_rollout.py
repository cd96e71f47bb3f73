"""The rollout state machine, one table row per transition, plus status round trips and the verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graylane.rollout.analysis import Figures, TrackFigures
from graylane.rollout.machine import (
    ABORTED,
    PAUSED,
    PROGRESSING,
    PROMOTED,
    ROLLED_BACK,
    SCRAPE_ERROR_LIMIT,
    RolloutSpec,
    RolloutStatus,
    canary_revision,
    judge,
    parse_rollout_spec,
    split_event,
    step,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = parse_rollout_spec(
    {
        "steps": [{"weight": 1, "pause": "1m"}, {"weight": 10, "pause": "1m"}, {"weight": 100}],
        "analysis": {"minRequests": 50, "failureThreshold": 2, "maxP99LatencyMs": 500, "maxLatencyRatio": 2},
    }
)
STABLE = TrackFigures(1000, 2, 0.2, 20.0)
GOOD = Figures(10, STABLE, TrackFigures(100, 0, 0.0, 25.0))
ERRORS = Figures(10, STABLE, TrackFigures(100, 50, 50.0, 25.0))
SLOW = Figures(10, STABLE, TrackFigures(100, 0, 0.0, 800.0))
RATIO = Figures(10, STABLE, TrackFigures(100, 0, 0.0, 100.0))  # 5x stable, under the 500 ms limit
FEW = Figures(10, STABLE, TrackFigures(49, 49, 100.0, 900.0))  # awful, but too few to judge

RUNNING = RolloutStatus(
    phase=PROGRESSING, step_started_at=T0, canary_weight=1, canary_revision="r1", rollout_spec_weight=0
)
AT_LAST = replace(RUNNING, current_step=2, canary_weight=100)
PAUSED_BY_HAND = replace(RUNNING, phase=PAUSED, canary_weight=30)
ROLLED = replace(RUNNING, phase=ROLLED_BACK, canary_weight=0, failed_checks=2)
PROMOTED_ = replace(AT_LAST, phase=PROMOTED)
ABORTED_ = replace(RUNNING, phase=ABORTED, canary_weight=0)


def tick(
    status: RolloutStatus,
    *,
    at: float = 61,
    figures: Figures | None = GOOD,
    scrape_ok: bool = True,
    revision: str = "r1",
    manual: float | None = 0,
    spec: RolloutSpec = SPEC,
) -> tuple[RolloutStatus, list[str]]:
    return step(
        spec,
        status,
        now=T0 + timedelta(seconds=at),
        figures=figures,
        scrape_ok=scrape_ok,
        canary_revision=revision,
        manual_weight=manual,
    )


PAUSED_SPEC = replace(SPEC, paused=True)
ABORT_SPEC = replace(SPEC, abort=True)

# Each row: (name, status before, tick arguments, expected status fields, expected event reasons)
TRANSITIONS: list[tuple[str, RolloutStatus, dict[str, Any], dict[str, Any], list[str]]] = [
    # --- starting ---
    (
        "first tick starts at step 0",
        RolloutStatus(),
        {},
        {
            "phase": PROGRESSING,
            "current_step": 0,
            "canary_weight": 1,
            "canary_revision": "r1",
            "step_started_at": T0 + timedelta(seconds=61),
            "rollout_spec_weight": 0,
        },
        ["RolloutStarted"],
    ),
    (
        "start while paused holds step 0",
        RolloutStatus(),
        {"spec": PAUSED_SPEC},
        {"phase": PAUSED, "canary_weight": 1},
        ["RolloutStarted"],
    ),
    (
        "new revision restarts from step 0",
        replace(RUNNING, current_step=1, canary_weight=10, failed_checks=1),
        {"revision": "r2"},
        {
            "phase": PROGRESSING,
            "current_step": 0,
            "canary_weight": 1,
            "failed_checks": 0,
            "canary_revision": "r2",
        },
        ["RolloutStarted"],
    ),
    (
        "new revision after a rollback restarts",
        ROLLED,
        {"revision": "r2"},
        {"phase": PROGRESSING, "canary_weight": 1, "failed_checks": 0},
        ["RolloutStarted"],
    ),
    (
        "new revision after promotion restarts",
        PROMOTED_,
        {"revision": "r2"},
        {"phase": PROGRESSING, "canary_weight": 1, "current_step": 0},
        ["RolloutStarted"],
    ),
    # --- advancing ---
    ("pass before the pause ends holds", RUNNING, {"at": 59}, {"current_step": 0, "canary_weight": 1}, []),
    (
        "pass after the pause advances",
        RUNNING,
        {"at": 60},
        {"current_step": 1, "canary_weight": 10, "step_started_at": T0 + timedelta(seconds=60)},
        ["StepAdvanced"],
    ),
    (
        "pass on the last step promotes",
        AT_LAST,
        {"at": 1},
        {"phase": PROMOTED, "canary_weight": 100},
        ["Promoted"],
    ),
    (
        "too few requests: no verdict, no advance",
        RUNNING,
        {"figures": FEW},
        {"current_step": 0, "failed_checks": 0, "canary_weight": 1},
        [],
    ),
    (
        "too few requests keeps the failure count",
        replace(RUNNING, failed_checks=1),
        {"figures": FEW},
        {"failed_checks": 1, "phase": PROGRESSING},
        [],
    ),
    ("no data holds", RUNNING, {"figures": None}, {"current_step": 0, "consecutive_scrape_errors": 0}, []),
    # --- failing ---
    (
        "a failed check counts",
        RUNNING,
        {"figures": ERRORS},
        {"failed_checks": 1, "current_step": 0},
        ["AnalysisFailed"],
    ),
    (
        "threshold reached rolls back",
        replace(RUNNING, failed_checks=1),
        {"figures": ERRORS},
        {"phase": ROLLED_BACK, "canary_weight": 0, "failed_checks": 2},
        ["RolledBack"],
    ),
    ("latency limit fails", RUNNING, {"figures": SLOW}, {"failed_checks": 1}, ["AnalysisFailed"]),
    ("latency ratio fails", RUNNING, {"figures": RATIO}, {"failed_checks": 1}, ["AnalysisFailed"]),
    (
        "a pass resets the failure count",
        replace(RUNNING, failed_checks=1),
        {"at": 10},
        {"failed_checks": 0},
        [],
    ),
    (
        "rollback works while paused",
        replace(RUNNING, phase=PAUSED, failed_checks=1),
        {"figures": ERRORS, "spec": PAUSED_SPEC},
        {"phase": ROLLED_BACK, "canary_weight": 0},
        ["RolledBack"],
    ),
    # --- holding after the end ---
    ("rolled back stays at 0", ROLLED, {}, {"phase": ROLLED_BACK, "canary_weight": 0}, []),
    (
        "rolled back ignores a manual weight",
        ROLLED,
        {"manual": 100},
        {"phase": ROLLED_BACK, "canary_weight": 0},
        [],
    ),
    ("rolled back ignores resume", ROLLED, {"spec": SPEC}, {"phase": ROLLED_BACK}, []),
    (
        "promoted stays promoted even if failing",
        PROMOTED_,
        {"figures": ERRORS},
        {"phase": PROMOTED, "canary_weight": 100},
        [],
    ),
    # --- abort ---
    (
        "abort drops to 0 at once",
        replace(RUNNING, current_step=1, canary_weight=10),
        {"spec": ABORT_SPEC, "scrape_ok": False, "figures": None},
        {"phase": ABORTED, "canary_weight": 0},
        ["Aborted"],
    ),
    (
        "abort beats a promotion",
        PROMOTED_,
        {"spec": ABORT_SPEC},
        {"phase": ABORTED, "canary_weight": 0},
        ["Aborted"],
    ),
    (
        "abort beats a manual 100",
        RUNNING,
        {"spec": ABORT_SPEC, "manual": 100},
        {"phase": ABORTED, "canary_weight": 0},
        ["Aborted"],
    ),
    (
        "abort after a rollback",
        ROLLED,
        {"spec": ABORT_SPEC},
        {"phase": ABORTED, "canary_weight": 0},
        ["Aborted"],
    ),
    (
        "abort beats a new revision",
        RUNNING,
        {"spec": ABORT_SPEC, "revision": "r2"},
        {"phase": ABORTED, "canary_weight": 0, "canary_revision": "r2"},
        ["Aborted"],
    ),
    (
        "abort held: no repeated event",
        ABORTED_,
        {"spec": ABORT_SPEC},
        {"phase": ABORTED, "canary_weight": 0},
        [],
    ),
    (
        "abort cleared: retry from step 0",
        ABORTED_,
        {},
        {"phase": PROGRESSING, "canary_weight": 1, "current_step": 0},
        ["RolloutRetried"],
    ),
    # --- pause / manual weight ---
    (
        "paused holds the step",
        RUNNING,
        {"spec": PAUSED_SPEC, "at": 600},
        {"phase": PAUSED, "current_step": 0, "canary_weight": 1},
        ["Paused"],
    ),
    (
        "paused again: no repeated event",
        replace(RUNNING, phase=PAUSED),
        {"spec": PAUSED_SPEC},
        {"phase": PAUSED},
        [],
    ),
    (
        "resume restarts the step's pause clock",
        replace(RUNNING, phase=PAUSED),
        {"at": 600},
        {"phase": PROGRESSING, "current_step": 0, "step_started_at": T0 + timedelta(seconds=600)},
        ["Resumed"],
    ),
    (
        "manual weight pauses at that weight",
        RUNNING,
        {"manual": 30},
        {"phase": PAUSED, "canary_weight": 30, "current_step": 0, "rollout_spec_weight": 0},
        ["Paused"],
    ),
    (
        "manual weight follows further changes",
        PAUSED_BY_HAND,
        {"manual": 40},
        {"phase": PAUSED, "canary_weight": 40},
        ["Paused"],
    ),
    (
        "manual weight held: no repeated event",
        PAUSED_BY_HAND,
        {"manual": 30},
        {"phase": PAUSED, "canary_weight": 30},
        [],
    ),
    (
        "manual weight back to the recorded one resumes",
        PAUSED_BY_HAND,
        {"manual": 0},
        {"phase": PROGRESSING, "canary_weight": 1},
        ["Resumed"],
    ),
    (
        "manual weight 100 promotes",
        RUNNING,
        {"manual": 100, "figures": None},
        {"phase": PROMOTED, "canary_weight": 100},
        ["Promoted"],
    ),
    (
        "manual weight while paused by spec wins",
        replace(RUNNING, phase=PAUSED),
        {"manual": 5, "spec": PAUSED_SPEC},
        {"phase": PAUSED, "canary_weight": 5},
        ["Paused"],
    ),
    (
        "no spec.weight at all is no manual change",
        RUNNING,
        {"manual": None},
        {"phase": PROGRESSING, "current_step": 1},
        ["StepAdvanced"],
    ),
    # --- scrape errors ---
    (
        "a scrape error holds and counts",
        RUNNING,
        {"scrape_ok": False, "figures": GOOD},
        {"consecutive_scrape_errors": 1, "current_step": 0},
        [],
    ),
    (
        "the Nth scrape error raises the flag",
        replace(RUNNING, consecutive_scrape_errors=SCRAPE_ERROR_LIMIT - 1),
        {"scrape_ok": False},
        {"consecutive_scrape_errors": SCRAPE_ERROR_LIMIT, "metrics_unavailable": True},
        ["MetricsUnavailable"],
    ),
    (
        "more scrape errors: no repeated event",
        replace(RUNNING, consecutive_scrape_errors=SCRAPE_ERROR_LIMIT),
        {"scrape_ok": False},
        {"consecutive_scrape_errors": SCRAPE_ERROR_LIMIT + 1, "canary_weight": 1},
        [],
    ),
    (
        "a good scrape clears the count",
        replace(RUNNING, consecutive_scrape_errors=7),
        {"figures": None},
        {"consecutive_scrape_errors": 0, "metrics_unavailable": False},
        [],
    ),
]


@pytest.mark.parametrize(
    ("before", "kwargs", "expected", "reasons"),
    [row[1:] for row in TRANSITIONS],
    ids=[row[0] for row in TRANSITIONS],
)
def test_transition(
    before: RolloutStatus, kwargs: dict[str, Any], expected: dict[str, Any], reasons: list[str]
) -> None:
    after, events = tick(before, **kwargs)
    assert {key: getattr(after, key) for key in expected} == expected
    assert [split_event(e)[1] for e in events] == reasons, events


def test_rollback_records_reason_and_both_tracks_figures() -> None:
    after, events = tick(replace(RUNNING, failed_checks=1), figures=ERRORS)
    assert "canary error rate 50% > 1%" in after.message
    assert after.last_analysis is not None
    assert after.last_analysis["verdict"] == "Fail"
    assert after.last_analysis["canary"]["errorRate"] == 50.0
    assert after.last_analysis["stable"]["requests"] == 1000
    assert after.last_analysis["at"] == "2026-11-26T12:01:01Z"
    assert split_event(events[0]) == ("Warning", "RolledBack", after.message)


def test_hold_messages_say_why() -> None:
    assert "minRequests 50" in tick(RUNNING, figures=FEW)[0].message
    assert "scraping" in tick(RUNNING, scrape_ok=False)[0].message
    assert "no metrics" in tick(RUNNING, figures=None)[0].message


# ---------------------------------------------------------------- the verdict
@pytest.mark.parametrize(
    ("figures", "result", "fragment"),
    [
        (GOOD, "Pass", ""),
        (ERRORS, "Fail", "error rate 50%"),
        (SLOW, "Fail", "p99 800 ms > 500 ms"),
        (RATIO, "Fail", "5x stable's 20 ms > 2x"),
        (FEW, "Inconclusive", "49 of minRequests 50"),
        (
            Figures(10, TrackFigures(10, 0, 0.0, 20.0), RATIO.canary),
            "Pass",
            "",
        ),  # stable too quiet for a ratio
        (Figures(10, STABLE, TrackFigures(100, 1, 1.0, None)), "Pass", ""),  # at the limit is not over it
        (Figures(10, STABLE, TrackFigures(100, 60, 60.0, 900.0)), "Fail", "p99 900 ms"),
    ],
)
def test_judge(figures: Figures, result: str, fragment: str) -> None:
    verdict = judge(SPEC.analysis, figures)
    assert verdict.result == result
    assert fragment in "; ".join(verdict.reasons)


# ---------------------------------------------------------------- status round trip and restart saf
def test_status_round_trips_through_the_status_dict() -> None:
    after, _ = tick(replace(RUNNING, failed_checks=1), figures=ERRORS)
    raw = after.to_dict()
    assert raw["phase"] == ROLLED_BACK and raw["stepStartedAt"] == "2026-11-26T12:00:00Z"
    assert RolloutStatus.from_dict(raw) == after
    assert RolloutStatus.from_dict(RolloutStatus().to_dict()) == RolloutStatus()


def test_a_restarted_operator_resumes_from_status() -> None:
    first, _ = tick(RUNNING, at=60)
    reloaded = RolloutStatus.from_dict(first.to_dict() | {"observedGeneration": 3, "conditions": []})
    second, events = tick(reloaded, at=120)
    assert (second.current_step, second.canary_weight, [split_event(e)[1] for e in events]) == (
        2,
        100,
        ["StepAdvanced"],
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"phase": "Ready", "canaryWeight": 5},  # the operator's own phase: no rollout state yet
        {"phase": "Progressing", "currentStep": "2", "stepStartedAt": "yesterday", "canaryWeight": "x"},
        {
            "phase": "Progressing",
            "currentStep": -1,
            "failedChecks": True,
            "stepStartedAt": "2026-01-01T00:00:00",
        },
    ],
)
def test_malformed_status_reads_as_defaults(raw: dict[str, Any] | None) -> None:
    status = RolloutStatus.from_dict(raw)
    assert status.current_step == 0 and status.failed_checks == 0 and status.step_started_at is None
    assert status.canary_revision is None
    after, events = tick(status)
    assert after.phase == PROGRESSING and [split_event(e)[1] for e in events] == ["RolloutStarted"]


def test_split_event() -> None:
    assert split_event("StepAdvanced: step 2/3 at 10%") == ("Normal", "StepAdvanced", "step 2/3 at 10%")
    assert split_event("Aborted: x")[0] == "Warning"


def test_canary_revision_changes_with_the_canary_upstream() -> None:
    route = {"spec": {"canary": "checkout-v2"}}
    upstream = {"metadata": {"name": "checkout-v2", "uid": "u-9", "generation": 3}}
    assert canary_revision(route, upstream) == "checkout-v2/u-9/3"
    bumped = {"metadata": {**upstream["metadata"], "generation": 4}}
    recreated = {"metadata": {**upstream["metadata"], "uid": "u-10"}}
    assert len({canary_revision(route, u) for u in (upstream, bumped, recreated)}) == 3
    assert canary_revision(route, None) == "checkout-v2/missing"
    assert canary_revision({"spec": {"canary": "checkout-v3"}}, None) != canary_revision(route, None)
