"""Analysis figures from metric snapshots: counting rules, counter resets, windows, histogram quantiles."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graylane.rollout import analysis
from graylane.rollout.analysis import Figures, MetricWindow, Snapshot, TrackFigures, histogram_quantile
from graylane.rollout.promtext import PromTextError

ROUTE = "shop/checkout"
BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def page(
    *,
    route: str = ROUTE,
    track: str = "canary",
    codes: Mapping[str, int] | None = None,
    errors: Mapping[str, int] | None = None,
    latencies: Mapping[float, int] | None = None,
    generation: int | None = None,
    fallbacks: int | None = None,
) -> str:
    """A /metrics page shaped like the proxy's: per-code counters, upstream errors, a cumulative histogram."""
    labels = f'route="{route}",track="{track}"'
    lines = ["# TYPE graylane_requests_total counter"]
    lines += [f'graylane_requests_total{{{labels},code="{c}"}} {n}' for c, n in (codes or {}).items()]
    lines += [
        f'graylane_upstream_errors_total{{{labels},reason="{r}"}} {n}' for r, n in (errors or {}).items()
    ]
    if latencies:
        for bound in BOUNDS:
            cumulative = sum(n for seconds, n in latencies.items() if seconds <= bound)
            lines.append(f'graylane_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}')
        total = sum(latencies.values())
        lines.append(f'graylane_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total}')
        lines.append(f"graylane_request_duration_seconds_count{{{labels}}} {total}")
    if fallbacks is not None:  # the proxy files a canary request retried on stable under stable
        lines.append(
            f'graylane_decisions_total{{route="{route}",track="stable",reason="fallback"}} {fallbacks}'
        )
        lines.append(f'graylane_decisions_total{{route="{route}",track="canary",reason="sticky"}} 12345')
    if generation is not None:
        lines.append(f'graylane_config_generation{{route="{route}"}} {generation}')
    return "\n".join(lines) + "\n"


def snap(**kw: object) -> Snapshot:
    return analysis.parse_snapshot(page(**kw))  # type: ignore[arg-type]


def figures_between(before: Snapshot, after: Snapshot, track: str = "canary") -> TrackFigures:
    window = MetricWindow(retention_seconds=60)
    window.add(now=0.0, snapshots={"p1": before})
    window.add(now=10.0, snapshots={"p1": after})
    figures = window.figures(ROUTE, now=10.0, window_seconds=10)
    assert figures is not None
    return figures.canary if track == "canary" else figures.stable


# ---------------------------------------------------------------- which answers count as errors
@pytest.mark.parametrize(
    ("codes", "errors", "fallbacks", "requests", "failed"),
    [
        ({"200": 90, "500": 10}, {}, 0, 90 + 10, 10),
        (
            {"200": 90, "503": 5, "502": 3, "504": 2},
            {"reset": 3, "timeout": 2},
            0,
            100,
            10,
        ),  # no double count
        ({"200": 50, "404": 40, "401": 10}, {}, 0, 100, 0),  # client errors are not the upstream's fault
        ({"200": 70, "499": 30}, {}, 0, 100, 0),  # client aborts do not count
        ({"200": 95, "503": 5}, {"overflow": 5}, 0, 100, 0),  # the proxy's own connection limit
        ({"200": 96}, {"connect": 4}, 4, 100, 4),  # refused, retried on stable: still the canary's failure
        ({}, {"connect": 60}, 60, 60, 60),  # a canary that refuses everything is judged, not ignored
        ({"200": 10, "5xx": 1, "50": 2}, {}, 0, 13, 0),  # only three-digit 5xx codes
        ({"200": 100}, {"truncated": 7}, 0, 100, 7),  # broke off mid-body: the client's 200 was no success
        ({"200": 98, "502": 2}, {"reset": 2, "truncated": 3}, 0, 100, 5),
    ],
)
def test_error_counting(
    codes: dict[str, int], errors: dict[str, int], fallbacks: int, requests: int, failed: int
) -> None:
    figures = figures_between(snap(), snap(codes=codes, errors=errors, fallbacks=fallbacks))
    assert (figures.requests, figures.errors) == (requests, failed)
    assert figures.error_rate == pytest.approx(100.0 * failed / requests)


def test_fallbacks_count_for_canary_only() -> None:
    after = snap(codes={"200": 10}, fallbacks=5)
    assert figures_between(snap(), after, "stable") == TrackFigures(0, 0, None, None)


def test_no_requests_means_no_error_rate_and_no_latency() -> None:
    figures = figures_between(snap(), snap())
    assert figures == TrackFigures(0, 0, None, None)


def test_tracks_and_routes_are_kept_apart() -> None:
    before = Snapshot()
    text = (
        page(codes={"200": 10}) + page(track="stable", codes={"500": 7}) + page(route="o/x", codes={"500": 3})
    )
    after = analysis.parse_snapshot(text)
    assert figures_between(before, after).errors == 0
    assert figures_between(before, after, "stable").errors == 7


# ---------------------------------------------------------------- counter deltas and resets
def test_deltas_over_the_window_not_totals() -> None:
    figures = figures_between(snap(codes={"200": 1000, "500": 1000}), snap(codes={"200": 1090, "500": 1010}))
    assert (figures.requests, figures.errors) == (100, 10)


def test_counter_reset_uses_new_value_as_delta() -> None:
    window = MetricWindow(retention_seconds=60)
    window.add(now=0.0, snapshots={"p1": snap(codes={"200": 500})})
    window.add(now=2.0, snapshots={"p1": snap(codes={"200": 520})})
    window.add(now=4.0, snapshots={"p1": snap(codes={"200": 7, "500": 3})})  # restarted
    figures = window.figures(ROUTE, now=4.0, window_seconds=10)
    assert figures is not None
    assert (figures.canary.requests, figures.canary.errors) == (20 + 10, 3)


def test_resets_are_per_proxy_so_other_proxies_do_not_inflate() -> None:
    window = MetricWindow(retention_seconds=60)
    window.add(now=0.0, snapshots={"a": snap(codes={"200": 10_000}), "b": snap(codes={"200": 100})})
    window.add(now=2.0, snapshots={"a": snap(codes={"200": 10_050}), "b": snap(codes={"200": 5})})
    figures = window.figures(ROUTE, now=2.0, window_seconds=2)
    assert figures is not None
    assert figures.canary.requests == 50 + 5


def test_sliding_window_drops_old_increases() -> None:
    window = MetricWindow(retention_seconds=30)
    window.add(now=0.0, snapshots={"p": snap(codes={"500": 0})})
    window.add(now=2.0, snapshots={"p": snap(codes={"500": 100})})  # a bad burst early on
    for t in range(4, 22, 2):
        window.add(now=float(t), snapshots={"p": snap(codes={"500": 100, "200": 10 * t})})
    figures = window.figures(ROUTE, now=20.0, window_seconds=10)
    assert figures is not None
    assert figures.canary.errors == 0
    assert figures.canary.requests == 200 - 100  # baseline: the sample at t=10
    assert figures.window_seconds == 10


def test_one_scrape_is_no_data() -> None:
    window = MetricWindow(retention_seconds=30)
    assert window.figures(ROUTE, now=0.0, window_seconds=10) is None
    window.add(now=0.0, snapshots={"p": snap(codes={"200": 10})})
    assert window.figures(ROUTE, now=0.0, window_seconds=10) is None


def test_old_samples_are_pruned_but_a_baseline_stays() -> None:
    window = MetricWindow(retention_seconds=10)
    for t in range(0, 100, 2):
        window.add(now=float(t), snapshots={"p": snap(codes={"200": 10 * t})})
    assert len(window._samples["p"]) <= 7
    figures = window.figures(ROUTE, now=98.0, window_seconds=10)
    assert figures is not None and figures.canary.requests == 100


def test_a_proxy_gone_for_longer_than_retention_is_forgotten() -> None:
    window = MetricWindow(retention_seconds=10)
    window.add(now=0.0, snapshots={"gone": snap(codes={"200": 1}), "p": snap()})
    window.add(now=20.0, snapshots={"p": snap()})
    assert set(window._samples) == {"p"}


def test_time_must_move_forward() -> None:
    window = MetricWindow(retention_seconds=10)
    window.add(now=5.0, snapshots={"p": snap()})
    with pytest.raises(ValueError, match="not after"):
        window.add(now=5.0, snapshots={"p": snap()})


# ---------------------------------------------------------------- latency
def test_p99_from_histogram_deltas() -> None:
    figures = figures_between(snap(), snap(codes={"200": 100}, latencies={0.02: 98, 0.4: 2}))
    # rank 99 of 100 falls in the (0.25, 0.5] bucket holding 2: 0.25 + 0.25 * (99 - 98) / 2
    assert figures.p99_latency_ms == pytest.approx(375.0)


def test_p99_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    figures = figures_between(snap(), snap(codes={"200": 10}, latencies={30.0: 10}))
    assert figures.p99_latency_ms == pytest.approx(10_000.0)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ([(0.1, 0), (math.inf, 0)], None),
        ([(0.1, 5)], None),  # no +Inf bucket
        ([(0.1, 100), (math.inf, 100)], 0.099),  # first bucket: lower bound 0
        ([(0.1, 50), (0.2, 100), (math.inf, 100)], 0.198),
        ([(0.1, 100), (0.2, 90), (math.inf, 100)], 0.099),  # non-monotonic (per-bucket resets): fixed up
    ],
)
def test_histogram_quantile_table(buckets: list[tuple[float, float]], expected: float | None) -> None:
    result = histogram_quantile(0.99, buckets)
    assert result == (None if expected is None else pytest.approx(expected))


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=len(BOUNDS) + 1, max_size=len(BOUNDS) + 1))
def test_quantile_lies_within_the_bucket_bounds(per_bucket: list[int]) -> None:
    cumulative, running = [], 0
    for bound, n in zip((*BOUNDS, math.inf), per_bucket, strict=True):
        running += n
        cumulative.append((bound, float(running)))
    result = histogram_quantile(0.99, cumulative)
    if running == 0:
        assert result is None
    else:
        assert result is not None and 0 <= result <= BOUNDS[-1]


# ---------------------------------------------------------------- parsing, summing, propagation
def test_garbage_pages_are_scrape_errors() -> None:
    with pytest.raises(PromTextError):
        analysis.parse_snapshot("<html>502 Bad Gateway</html>")
    with pytest.raises(PromTextError, match="is -1"):
        analysis.parse_snapshot(f'graylane_requests_total{{route="{ROUTE}",track="canary",code="200"}} -1\n')
    with pytest.raises(PromTextError, match="no 'code' label"):
        analysis.parse_snapshot(f'graylane_requests_total{{route="{ROUTE}",track="canary"}} 1\n')
    with pytest.raises(PromTextError, match="not a number"):
        analysis.parse_snapshot(
            f'graylane_request_duration_seconds_bucket{{route="{ROUTE}",track="canary",le="x"}} 1\n'
        )


def test_other_metrics_and_tracks_are_ignored() -> None:
    text = 'process_cpu_seconds_total 4\ngraylane_requests_total{route="a/b",track="shadow",code="200"} 1\n'
    assert analysis.parse_snapshot(text) == Snapshot()


def test_sum_snapshots_and_propagation() -> None:
    a = snap(codes={"200": 3}, generation=4)
    b = snap(codes={"200": 5, "500": 1}, generation=3)
    total = analysis.sum_snapshots([a, b])
    assert total.series[(ROUTE, "canary", "code", "200")] == 8
    assert total.generations == {ROUTE: 3}
    assert total.routes() == {ROUTE}
    assert analysis.propagated({"a": a, "b": b}, ROUTE, 3)
    assert not analysis.propagated({"a": a, "b": b}, ROUTE, 4)
    assert not analysis.propagated({}, ROUTE, 1)
    assert not analysis.propagated({"a": a}, "other/route", 1)


def test_figures_round_trip_through_json_dict() -> None:
    figures = Figures(10.0, TrackFigures(100, 0, 0.0, 12.5), TrackFigures(50, 5, 10.0, None))
    assert Figures.from_dict(figures.to_dict()) == figures
    assert figures.to_dict()["canary"] == {
        "requests": 50,
        "errors": 5,
        "errorRate": 10.0,
        "p99LatencyMs": None,
    }
