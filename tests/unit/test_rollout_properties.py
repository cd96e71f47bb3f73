"""Property tests over random histories of the rollout machine (reliability goals B2, B4, B5, B7).

- the canary weight never rises after a rollback or an abort until the user acts (new revision, or
  ``abort`` cleared after ``Aborted``);
- a step never advances, and analysis never promotes, without a passing verdict in that very interval;
- weights stay within 0-100 and the status always round-trips through its dict.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.rollout.analysis import Figures, TrackFigures
from graylane.rollout.machine import (
    ABORTED,
    PROMOTED,
    ROLLED_BACK,
    RolloutStatus,
    judge,
    parse_rollout_spec,
    step,
)

SPEC = parse_rollout_spec(
    {
        "steps": [
            {"weight": 5, "pause": "30s"},
            {"weight": 20, "pause": "30s"},
            {"weight": 60},
            {"weight": 100},
        ],
        "analysis": {"minRequests": 50, "failureThreshold": 2, "maxP99LatencyMs": 500, "maxLatencyRatio": 3},
    }
)
STABLE = TrackFigures(1000, 0, 0.0, 20.0)
FIGURES = [
    None,
    Figures(10, STABLE, TrackFigures(100, 0, 0.0, 25.0)),  # healthy
    Figures(10, STABLE, TrackFigures(100, 50, 50.0, 25.0)),  # errors
    Figures(10, STABLE, TrackFigures(100, 0, 0.0, 900.0)),  # slow
    Figures(10, STABLE, TrackFigures(100, 0, 0.0, 100.0)),  # slow relative to stable
    Figures(10, STABLE, TrackFigures(10, 10, 100.0, 900.0)),  # too few requests
]
BASELINE = 0.0


@dataclass(frozen=True)
class Tick:
    seconds: int
    figures: Figures | None
    scrape_ok: bool
    abort: bool
    paused: bool
    manual: float | None
    revision: str


ticks = st.builds(
    Tick,
    seconds=st.integers(min_value=1, max_value=90),
    figures=st.sampled_from(FIGURES),
    scrape_ok=st.sampled_from([True] * 4 + [False]),
    abort=st.sampled_from([False] * 9 + [True]),
    paused=st.sampled_from([False] * 5 + [True]),
    manual=st.sampled_from([BASELINE] * 8 + [None, 30.0, 100.0]),
    revision=st.sampled_from(["r1"] * 12 + ["r2"]),
)


def passed(tick: Tick) -> bool:
    return tick.scrape_ok and tick.figures is not None and judge(SPEC.analysis, tick.figures).result == "Pass"


@settings(max_examples=400, deadline=None)
@given(history=st.lists(ticks, min_size=1, max_size=60))
def test_history_invariants(history: list[Tick]) -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    status = RolloutStatus()
    frozen = False  # after a rollback or an abort, until the user acts
    for tick in history:
        now += timedelta(seconds=tick.seconds)
        spec = replace(SPEC, abort=tick.abort, paused=tick.paused)
        before = status
        status, _ = step(
            spec,
            before,
            now=now,
            figures=tick.figures,
            scrape_ok=tick.scrape_ok,
            canary_revision=tick.revision,
            manual_weight=tick.manual,
        )
        user_acted = tick.revision != before.canary_revision or (before.phase == ABORTED and not tick.abort)
        if frozen and not user_acted:
            assert status.canary_weight == 0, (before, tick, status)
        if status.phase in (ROLLED_BACK, ABORTED):
            frozen = True
            assert status.canary_weight == 0
        elif user_acted:
            frozen = False

        same_rollout = before.phase is not None and tick.revision == before.canary_revision
        if same_rollout and status.current_step > before.current_step:
            assert passed(tick), (before, tick, status)
        manual_promote = tick.manual == 100 and before.rollout_spec_weight != 100
        if same_rollout and status.phase == PROMOTED and before.phase != PROMOTED:
            assert passed(tick) or manual_promote, (before, tick, status)

        assert 0 <= status.canary_weight <= 100
        assert 0 <= status.current_step < len(SPEC.steps)
        assert RolloutStatus.from_dict(status.to_dict()) == status
