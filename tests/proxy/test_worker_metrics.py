"""Merging the workers' metrics: sums, the pod-wide generation and readiness, and a JSON round trip."""

from __future__ import annotations

import json

from graylane.proxy.admin.workers import merged, snapshot
from graylane.proxy.metrics import Metrics
from hypothesis import given
from hypothesis import strategies as st

from graylane.rollout import promtext

NOW = 1_800_000_000.0


def values(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels)): s.value for s in promtext.parse(m.render(now=NOW))}


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def worker(requests: int, *, generation: dict[str, int], ready: int, connected: int | None) -> Metrics:
    m = Metrics()
    for i in range(requests):
        m.request_done("shop/checkout", "canary" if i % 2 else "stable", "200", 0.003 * (i + 1))
        m.decision("shop/checkout", "stable", "split")
    m.upstream_error("shop/checkout", "canary", "refused")
    m.mirrored("shop/checkout", "body-mismatch")
    m.rejected("schema")
    m.jwt_failed("expired")
    m.tls_failed("key-mismatch")
    m.tls_expiry["tls-a"] = NOW + 86400 + requests  # workers that loaded it at different moments
    m.generation = dict(generation)
    m.reloads, m.ready, m.control_plane_connected = 2, ready, connected
    return m


def test_counters_and_histograms_are_summed_and_gauges_are_the_pods() -> None:
    a = worker(3, generation={"shop/checkout": 7, "shop/cart": 2}, ready=1, connected=1)
    b = worker(4, generation={"shop/checkout": 6}, ready=0, connected=None)
    got = values(merged([snapshot(a), snapshot(b)]))
    r = "shop/checkout"
    assert got[key("graylane_requests_total", route=r, track="stable", code="200")] == 2 + 2
    assert got[key("graylane_requests_total", route=r, track="canary", code="200")] == 1 + 2
    assert got[key("graylane_decisions_total", route=r, track="stable", reason="split")] == 7
    assert got[key("graylane_upstream_errors_total", route=r, track="canary", reason="refused")] == 2
    assert got[key("graylane_mirror_total", route=r, result="body-mismatch")] == 2
    assert got[key("graylane_config_rejected_total", reason="schema")] == 2
    assert got[key("graylane_jwt_rejected_total", reason="expired")] == 2
    assert got[key("graylane_tls_rejected_total", reason="key-mismatch")] == 2
    assert got[key("graylane_tls_certificate_expiry_seconds", secret="tls-a")] == 86400 + 3  # the earliest
    assert got[key("graylane_config_reloads_total")] == 4
    assert got[key("graylane_request_duration_seconds_count", route=r, track="stable")] == 4
    assert got[key("graylane_request_duration_seconds_bucket", route=r, track="stable", le="0.005")] == 2
    total = got[key("graylane_request_duration_seconds_sum", route=r, track="stable")]
    assert abs(total - (0.003 + 0.009) * 2) < 1e-9  # 3 ms and 9 ms on each worker
    # the generation every worker serves; a route one worker lacks is not served pod-wide
    assert got[key("graylane_config_generation", route=r)] == 6
    assert key("graylane_config_generation", route="shop/cart") not in got
    assert got[key("graylane_ready")] == 0
    assert got[key("graylane_control_plane_connected")] == 1


def test_one_worker_merges_to_itself() -> None:
    m = worker(5, generation={"shop/checkout": 3}, ready=1, connected=None)
    assert merged([snapshot(m)]).render(now=NOW) == m.render(now=NOW)


names = st.sampled_from(["a/b", "x/y", 'q"uote', "back\\slash"])
tracks = st.sampled_from(["stable", "canary"])
samples = st.lists(st.tuples(names, tracks, st.sampled_from(["200", "502"]), st.floats(0, 20)), max_size=30)


@given(requests=samples, generation=st.dictionaries(names, st.integers(0, 10**6)), ready=st.integers(0, 1))
def test_a_snapshot_survives_json_and_renders_the_same(
    requests: list[tuple[str, str, str, float]], generation: dict[str, int], ready: int
) -> None:
    m = Metrics()
    for route, track, code, seconds in requests:
        m.request_done(route, track, code, seconds)
        m.decision(route, track, "rule")
    m.generation, m.ready = generation, ready
    wire = json.loads(json.dumps(snapshot(m)))
    assert merged([wire]).render(now=NOW) == m.render(now=NOW)
    doubled = values(merged([wire, wire]))
    for key, value in values(m).items():
        if key[0].endswith(("_total", "_count", "_bucket")):
            assert doubled[key] == 2 * value
