"""Shadow steps in rollouts (issue 16): ``{mirror: 100, pause: 10m}`` keeps the weight at 0 while the
canary is judged on mirrored traffic (error rate, p99, latency ratio, ``maxMismatchRate``). Spec parsing,
the analysis figures of ``track="mirror"``, the verdict, the machine's transitions, property tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.rollout import analysis
from graylane.rollout.analysis import Figures, MetricWindow, MirrorFigures, TrackFigures
from graylane.rollout.machine import (
    ABORTED,
    PAUSED,
    PROGRESSING,
    PROMOTED,
    ROLLED_BACK,
    RolloutSpecError,
    RolloutStatus,
    Step,
    judge,
    parse_rollout_spec,
    step,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SPEC = parse_rollout_spec(
    {
        "steps": [{"mirror": 100, "pause": "1m"}, {"weight": 10, "pause": "1m"}, {"weight": 100}],
        "analysis": {"minRequests": 50, "failureThreshold": 2, "maxLatencyRatio": 3, "maxMismatchRate": 5},
    }
)
STABLE = TrackFigures(1000, 0, 0.0, 20.0)
IDLE_CANARY = TrackFigures(0, 0, None, None)  # weight 0: no user reaches it


def mirrored(
    requests: float = 200, errors: float = 0, p99: float = 25.0, compared: float = 200, mismatches: float = 0
) -> Figures:
    track = TrackFigures(requests, errors, 100 * errors / requests if requests else None, p99)
    rate = 100 * mismatches / compared if compared else None
    return Figures(10, STABLE, IDLE_CANARY, MirrorFigures(track, compared, mismatches, rate))


GOOD = mirrored()
MISMATCHING = mirrored(mismatches=40)
FAILING = mirrored(errors=50)
SLOW = mirrored(p99=100.0)  # 5x stable
FEW = mirrored(requests=20, compared=20, mismatches=20)
NOTHING = Figures(10, STABLE, IDLE_CANARY, None)
SHADOW = RolloutStatus(
    phase=PROGRESSING,
    step_started_at=T0,
    canary_weight=0,
    canary_revision="r1",
    rollout_spec_weight=0,
    mirror_percent=100,
)


def tick(
    status: RolloutStatus, *, at: float = 61, figures: Figures | None = GOOD, **kw: Any
) -> tuple[RolloutStatus, list[str]]:
    spec = kw.pop("spec", SPEC)
    return step(
        spec,
        status,
        now=T0 + timedelta(seconds=at),
        figures=figures,
        scrape_ok=kw.pop("scrape_ok", True),
        canary_revision=kw.pop("revision", "r1"),
        manual_weight=kw.pop("manual", 0),
    )


# -- spec -------------------------------------------------------------------------------------------------


def test_a_shadow_step_parses_as_weight_0_with_a_mirror_percent() -> None:
    assert SPEC.steps == (Step(0, 60, 100.0), Step(10, 60), Step(100, 0))
    assert SPEC.analysis.max_mismatch_rate == 5
    assert parse_rollout_spec({"steps": [{"weight": 5}]}).analysis.max_mismatch_rate is None


@pytest.mark.parametrize(
    ("steps", "analysis_", "path", "fragment"),
    [
        ([{"weight": 5, "mirror": 100}], {}, "spec.rollout.steps[0]", "exactly one of weight and mirror"),
        ([{"pause": "1m"}], {}, "spec.rollout.steps[0].weight", "required"),
        ([{"mirror": 0}], {}, "spec.rollout.steps[0].mirror", "above 0"),
        ([{"mirror": 100.001}], {}, "spec.rollout.steps[0].mirror", "between 0 and 100"),
        ([{"mirror": 12.345}], {}, "spec.rollout.steps[0].mirror", "two decimals"),
        ([{"weight": 10}, {"mirror": 100}], {}, "spec.rollout.steps[1]", "cannot follow weight 10"),
        ([{"mirror": 100}], {"maxMismatchRate": 101}, "spec.rollout.analysis.maxMismatchRate", "between 0"),
    ],
)
def test_bad_shadow_steps_name_their_field(
    steps: list[dict[str, Any]], analysis_: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(RolloutSpecError) as caught:
        parse_rollout_spec({"steps": steps, "analysis": analysis_})
    assert [e.path for e in caught.value.errors] == [path], caught.value.errors
    assert fragment in caught.value.errors[0].message


def test_shadow_steps_may_follow_each_other_and_weight_0() -> None:
    spec = parse_rollout_spec({"steps": [{"weight": 0}, {"mirror": 10}, {"mirror": 100}, {"weight": 1}]})
    assert [(s.weight, s.mirror) for s in spec.steps] == [(0, None), (0, 10), (0, 100), (1, None)]


# -- figures from the proxies' pages -----------------------------------------------------------------------


def mirror_page(codes: dict[str, int], results: dict[str, int], slow: int = 0) -> str:
    lines = [
        f'graylane_requests_total{{route="shop/checkout",track="mirror",code="{c}"}} {n}'
        for c, n in codes.items()
    ]
    lines += [f'graylane_mirror_total{{route="shop/checkout",result="{r}"}} {n}' for r, n in results.items()]
    total = sum(codes.values())
    lines += [
        f'graylane_request_duration_seconds_bucket{{route="shop/checkout",track="mirror",le="{le}"}} {n}'
        for le, n in (("0.025", total - slow), ("0.5", total), ("+Inf", total))
    ]
    lines.append('graylane_requests_total{route="shop/checkout",track="stable",code="200"} 1000')
    return "\n".join(lines) + "\n"


def test_mirror_figures_come_from_track_mirror_and_the_results() -> None:
    window = MetricWindow(retention_seconds=60)
    window.add(now=0.0, snapshots={"p": analysis.parse_snapshot(mirror_page({}, {}))})
    after = mirror_page(
        {"200": 90, "404": 6, "504": 4},
        {"match": 72, "status-mismatch": 6, "body-mismatch": 18, "canary-error": 4, "dropped": 30},
    )
    window.add(now=10.0, snapshots={"p": analysis.parse_snapshot(after)})
    figures = window.figures("shop/checkout", now=10.0, window_seconds=10)
    assert figures is not None and figures.mirror is not None
    assert (figures.mirror.track.requests, figures.mirror.track.errors) == (100, 4)  # 4xx is no error
    assert (figures.mirror.compared, figures.mirror.mismatches, figures.mirror.mismatch_rate) == (
        96,
        24,
        25.0,
    )
    assert figures.canary == IDLE_CANARY and figures.stable.requests == 0  # the mirror is no canary traffic
    assert Figures.from_dict(figures.to_dict()) == figures
    assert figures.to_dict()["mirror"]["mismatchRate"] == 25.0


def test_no_mirror_traffic_means_no_mirror_figures() -> None:
    window = MetricWindow(retention_seconds=60)
    window.add(now=0.0, snapshots={"p": analysis.parse_snapshot(mirror_page({}, {}))})
    window.add(now=1.0, snapshots={"p": analysis.parse_snapshot(mirror_page({}, {}))})
    figures = window.figures("shop/checkout", now=1.0, window_seconds=10)
    assert figures is not None and figures.mirror is None and "mirror" not in figures.to_dict()


# -- the verdict ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figures", "result", "fragment"),
    [
        (GOOD, "Pass", ""),
        (MISMATCHING, "Fail", "mirror mismatch rate 20% > 5% (40 of 200 pairs differ)"),
        (FAILING, "Fail", "canary (mirrored) error rate 25% > 1%"),
        (SLOW, "Fail", "canary (mirrored) p99 100 ms is 5x stable's"),
        (FEW, "Inconclusive", "canary (mirrored) served 20 of minRequests 50"),
        (NOTHING, "Inconclusive", "served 0 of minRequests"),
    ],
)
def test_shadow_verdicts(figures: Figures, result: str, fragment: str) -> None:
    verdict = judge(SPEC.analysis, figures, shadow=True)
    assert verdict.result == result and fragment in "; ".join(verdict.reasons), verdict


def test_a_weighted_step_ignores_the_mirror() -> None:
    assert judge(SPEC.analysis, MISMATCHING).result == "Inconclusive"  # the canary itself served nothing
    busy = replace(MISMATCHING, canary=TrackFigures(100, 0, 0.0, 25.0))
    assert judge(SPEC.analysis, busy).result == "Pass"


# -- the machine ---------------------------------------------------------------------------------------------


TRANSITIONS: list[tuple[str, RolloutStatus, dict[str, Any], dict[str, Any], list[str]]] = [
    (
        "starts in the shadow step",
        RolloutStatus(),
        {},
        {"phase": PROGRESSING, "canary_weight": 0, "mirror_percent": 100, "current_step": 0},
        ["RolloutStarted"],
    ),
    (
        "a passing shadow step holds for its pause",
        SHADOW,
        {"at": 59},
        {"canary_weight": 0, "mirror_percent": 100},
        [],
    ),
    (
        "a passing shadow step advances to the first weight and stops mirroring",
        SHADOW,
        {"at": 60},
        {"current_step": 1, "canary_weight": 10, "mirror_percent": None},
        ["StepAdvanced"],
    ),
    (
        "mismatches count as a failed check",
        SHADOW,
        {"figures": MISMATCHING},
        {"failed_checks": 1, "canary_weight": 0, "mirror_percent": 100},
        ["AnalysisFailed"],
    ),
    (
        "and roll back at the threshold",
        replace(SHADOW, failed_checks=1),
        {"figures": MISMATCHING},
        {"phase": ROLLED_BACK, "canary_weight": 0, "mirror_percent": None},
        ["RolledBack"],
    ),
    (
        "too little mirrored traffic holds",
        SHADOW,
        {"figures": FEW},
        {"current_step": 0, "failed_checks": 0, "mirror_percent": 100},
        [],
    ),
    (
        "paused holds the shadow step",
        SHADOW,
        {"spec": replace(SPEC, paused=True)},
        {"phase": PAUSED, "canary_weight": 0, "mirror_percent": 100},
        ["Paused"],
    ),
    (
        "a manual weight leaves the shadow step",
        SHADOW,
        {"manual": 30},
        {"phase": PAUSED, "canary_weight": 30, "mirror_percent": None},
        ["Paused"],
    ),
    (
        "abort stops mirroring",
        SHADOW,
        {"spec": replace(SPEC, abort=True)},
        {"phase": ABORTED, "canary_weight": 0, "mirror_percent": None},
        ["Aborted"],
    ),
    (
        "manual 100 promotes and stops mirroring",
        SHADOW,
        {"manual": 100},
        {"phase": PROMOTED, "canary_weight": 100, "mirror_percent": None},
        ["Promoted"],
    ),
]


@pytest.mark.parametrize(
    ("name", "before", "kw", "fields", "events"), TRANSITIONS, ids=[t[0] for t in TRANSITIONS]
)
def test_transition(
    name: str, before: RolloutStatus, kw: dict[str, Any], fields: dict[str, Any], events: list[str]
) -> None:
    after, posted = tick(before, **kw)
    assert {k: getattr(after, k) for k in fields} == fields
    assert [e.partition(":")[0] for e in posted] == events


def test_a_shadow_rollback_says_no_user_saw_the_canary() -> None:
    after, events = tick(replace(SHADOW, failed_checks=1), figures=MISMATCHING)
    assert "mismatch rate" in after.message and "no user was routed to the canary" in after.message
    assert after.last_analysis is not None and after.last_analysis["mirror"]["mismatchRate"] == 20.0
    assert events[0].startswith("RolledBack: ") and "mismatch" in events[0]


def test_status_round_trips_the_mirror_percent() -> None:
    assert RolloutStatus.from_dict(SHADOW.to_dict()) == SHADOW
    assert SHADOW.to_dict()["mirrorPercent"] == 100
    assert RolloutStatus.from_dict({**SHADOW.to_dict(), "mirrorPercent": "x"}).mirror_percent is None


# -- properties over histories ------------------------------------------------------------------------------


PROPERTY_SPEC = parse_rollout_spec(
    {
        "steps": [
            {"mirror": 50, "pause": "30s"},
            {"mirror": 100},
            {"weight": 20},
            {"weight": 100},
        ],
        "analysis": {"minRequests": 50, "failureThreshold": 2, "maxLatencyRatio": 3, "maxMismatchRate": 5},
    }
)
CANARY_OK = TrackFigures(100, 0, 0.0, 25.0)
CHOICES = [None, GOOD, MISMATCHING, FAILING, SLOW, FEW, NOTHING, replace(MISMATCHING, canary=CANARY_OK)]


@settings(max_examples=400, deadline=None)
@given(
    history=st.lists(
        st.tuples(
            st.integers(1, 60),
            st.sampled_from(CHOICES),
            st.booleans(),
            st.sampled_from([0.0] * 8 + [30.0, 100.0]),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_shadow_history_invariants(history: list[tuple[int, Figures | None, bool, float]]) -> None:
    """No user is ever routed to the canary in a shadow step; mirroring happens only in shadow steps; a shadow
    step is left forward only with a passing verdict on the mirror's figures; status round-trips."""
    now, status = T0, RolloutStatus()
    for seconds, figures, paused, manual in history:
        now += timedelta(seconds=seconds)
        before = status
        status, _ = step(
            replace(PROPERTY_SPEC, paused=paused),
            before,
            now=now,
            figures=figures,
            scrape_ok=True,
            canary_revision="r1",
            manual_weight=manual,
        )
        current = PROPERTY_SPEC.steps[status.current_step]
        if status.mirror_percent is not None:
            assert status.canary_weight == 0 and status.phase in (PROGRESSING, PAUSED)
            assert status.mirror_percent == current.mirror
        if status.phase in (ROLLED_BACK, ABORTED, PROMOTED):
            assert status.mirror_percent is None
        if before.mirror_percent is not None and status.current_step > before.current_step:
            assert (
                figures is not None and judge(PROPERTY_SPEC.analysis, figures, shadow=True).result == "Pass"
            )
        assert RolloutStatus.from_dict(status.to_dict()) == status
