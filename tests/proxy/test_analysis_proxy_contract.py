"""The analysis reads what the proxy's own metrics renderer writes (the /metrics contract, end to end)."""

from __future__ import annotations

import pytest
from graylane.proxy.metrics import Metrics

from graylane.rollout import analysis
from graylane.rollout.analysis import MetricWindow

ROUTE = "shop/checkout"


def test_figures_from_the_proxy_renderer() -> None:
    metrics = Metrics()
    before = analysis.parse_snapshot(metrics.render())
    for _ in range(90):
        metrics.request_done(ROUTE, "canary", "200", 0.02)
    for _ in range(8):
        metrics.request_done(ROUTE, "canary", "500", 0.02)
    metrics.request_done(ROUTE, "canary", "404", 0.4)
    metrics.request_done(ROUTE, "canary", "504", 0.4)
    metrics.upstream_error(ROUTE, "canary", "timeout")
    for _ in range(50):
        metrics.request_done(ROUTE, "stable", "200", 0.01)
    metrics.generation[ROUTE] = 7

    after = analysis.parse_snapshot(metrics.render())
    window = MetricWindow(retention_seconds=60)
    window.add(now=0.0, snapshots={"proxy-0": before})
    window.add(now=5.0, snapshots={"proxy-0": after})
    figures = window.figures(ROUTE, now=5.0, window_seconds=5)

    assert figures is not None
    assert (figures.canary.requests, figures.canary.errors) == (100, 9)
    assert figures.canary.error_rate == pytest.approx(9.0)
    # 98 answers in (0.01, 0.025], 2 in (0.25, 0.5]: rank 99 is half-way through the slow bucket
    assert figures.canary.p99_latency_ms == pytest.approx(375.0)
    assert (figures.stable.requests, figures.stable.errors, figures.stable.error_rate) == (50, 0, 0.0)
    assert analysis.propagated({"proxy-0": after}, ROUTE, 7)
