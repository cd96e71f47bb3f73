"""Canary analysis figures computed from the proxies' own ``/metrics`` pages (pure: no I/O, clock passed in).

Flow, once per interval: scrape every proxy → :func:`parse_snapshot` each page → ``window.add(now=…,
snapshots={proxy: snapshot})`` → ``window.figures(route, now=…, window_seconds=…)``.

Counting (the contract with the proxy's metrics, ``route`` label ``namespace/name``):

- ``requests`` = the increase of ``graylane_requests_total`` over the window, every code (4xx and 499
  included: they are requests the track answered or the client gave up on).
- ``errors`` = 5xx answers - ``overflow`` upstream errors + ``truncated`` upstream errors + canary requests
  that fell back to stable.
  The proxy counts the code the client got, so its own 502 after a reset or connect failure and 504 after a
  timeout are 5xx answers (counted once, not again from ``graylane_upstream_errors_total``). ``overflow``
  (the proxy's own connection limit, answered 503 by the proxy) is the proxy's capacity, not the upstream's
  health. A canary request refused or reset before any byte came back is retried on stable and filed under
  stable; the proxy counts it in ``graylane_decisions_total{track="stable",reason="fallback"}``, and those
  count as canary requests *and* canary errors. 4xx and 499 (client abort) never count. A response that
  broke off after its head was sent (reset or timeout mid-body) is counted under the status the client got
  and as ``graylane_upstream_errors_total{reason="truncated"}``: an error, not another request.
- A TrafficPolicy's rollout on an HTTPRoute: the tracks ``rule-<i>[.<j>].canary`` and ``...stable`` of
  its rules are summed into ``canary`` and ``stable``.
- ``p99LatencyMs`` = ``histogram_quantile(0.99, increase(graylane_request_duration_seconds_bucket))`` with
  Prometheus's interpolation, in milliseconds.
- ``mirror`` (shadow traffic, when there was any): the same three from ``track="mirror"`` (the canary's
  answers to mirrored requests, its failures counted as the 502/504 the proxy would have answered), plus the
  pairs compared and mismatched from ``graylane_mirror_total{result}``.

Counter resets (a proxy restarted) are handled per proxy and per series, as Prometheus's ``increase`` does:
a value lower than the previous sample is a reset and the new value is the delta.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from graylane.config.mirrorblock import mismatch_rate
from graylane.rollout import promtext
from graylane.rollout.figures import Figures, MirrorFigures, TrackFigures

__all__ = ["Figures", "MetricWindow", "MirrorFigures", "Snapshot", "TrackFigures", "parse_snapshot"]
TRACKS = ("stable", "canary")
MIRROR = "mirror"
QUANTILE = 0.99
_CODE = "code"
_ERROR = "error"
_BUCKET = "le"
_DECISION = "decision"
_RESULT = "result"
_FAMILIES = {
    "graylane_requests_total": (_CODE, "code"),
    "graylane_upstream_errors_total": (_ERROR, "reason"),
    "graylane_request_duration_seconds_bucket": (_BUCKET, "le"),
    "graylane_decisions_total": (_DECISION, "reason"),
    "graylane_mirror_total": (_RESULT, "result"),  # no track label: filed under "mirror"
}
_FALLBACK = "fallback"

# (route, track, family, discriminator): one counter series.
SeriesKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The graylane counters of one proxy (or their sum over proxies) at one moment."""

    series: Mapping[SeriesKey, float] = field(default_factory=dict)
    generations: Mapping[str, int] = field(default_factory=dict)
    by_route: Mapping[str, Mapping[SeriesKey, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, dict[SeriesKey, float]] = {}
        for key, value in self.series.items():
            index.setdefault(key[0], {})[key] = value
        object.__setattr__(self, "by_route", index)  # per-route figures cost only that route's series

    def routes(self) -> frozenset[str]:
        return frozenset(self.by_route)


def parse_snapshot(text: str) -> Snapshot:
    """A proxy's ``/metrics`` page → :class:`Snapshot`. Raises ``promtext.PromTextError`` on a bad page."""
    series: dict[SeriesKey, float] = {}
    generations: dict[str, int] = {}
    for sample in promtext.parse(text):
        if sample.name == "graylane_config_generation":
            route = sample.label("route")
            if route is not None and math.isfinite(sample.value):
                generations[route] = int(sample.value)
            continue
        family = _FAMILIES.get(sample.name)
        route = sample.label("route")
        track = MIRROR if family is not None and family[0] == _RESULT else _role(sample.label("track"))
        if family is None or route is None or (track not in TRACKS and track != MIRROR):
            continue
        kind, label = family
        discriminator = sample.label(label)
        if discriminator is None:
            raise promtext.PromTextError(0, f"{sample.name} for route {route!r} has no {label!r} label")
        if not (math.isfinite(sample.value) and sample.value >= 0):
            raise promtext.PromTextError(0, f"{sample.name} for route {route!r} is {sample.value}")
        if kind == _DECISION and discriminator != _FALLBACK:
            continue
        if kind == _BUCKET:
            discriminator = _bucket_bound(discriminator, route)
        key = (route, track, kind, discriminator)
        series[key] = series.get(key, 0.0) + sample.value
    return Snapshot(series, generations)


def _role(track: str | None) -> str | None:
    """A Gateway rule's rollout tracks (``rule-<i>.canary``, ``rule-<i>.<j>.stable``) count as the route's
    ``canary`` and ``stable``, summed over its rules; CanaryRoute tracks are the roles themselves."""
    if track is None or track in TRACKS:
        return track
    return track.rpartition(".")[2] if track.startswith("rule-") else track


def _bucket_bound(text: str, route: str) -> str:
    try:
        bound = float(text)
    except ValueError:
        bound = math.nan
    if math.isnan(bound):
        raise promtext.PromTextError(0, f"histogram bucket le={text!r} for route {route!r} is not a number")
    return repr(bound)


def sum_snapshots(snapshots: Iterable[Snapshot]) -> Snapshot:
    """Series summed across proxies; ``generations`` keeps the lowest generation any proxy reports."""
    series: dict[SeriesKey, float] = {}
    generations: dict[str, int] = {}
    for snap in snapshots:
        for key, value in snap.series.items():
            series[key] = series.get(key, 0.0) + value
        for route, gen in snap.generations.items():
            generations[route] = min(gen, generations.get(route, gen))
    return Snapshot(series, generations)


def propagated(snapshots: Mapping[str, Snapshot], route: str, generation: int) -> bool:
    """Whether every proxy serves ``route`` at ``generation`` or later (the ``Propagated`` condition)."""
    return bool(snapshots) and all(s.generations.get(route, -1) >= generation for s in snapshots.values())


class MetricWindow:
    """Timestamped per-proxy snapshots; figures from reset-aware counter increases over a sliding window.

    ``now`` is any monotonic clock in seconds, passed in. Samples older than ``retention_seconds`` are
    dropped, except the newest one before the cut, which stays as the window's baseline.
    """

    def __init__(self, retention_seconds: float) -> None:
        self.retention_seconds = retention_seconds
        self._samples: dict[str, deque[tuple[float, Snapshot]]] = {}

    def add(self, *, now: float, snapshots: Mapping[str, Snapshot]) -> None:
        """Record one scrape round: ``snapshots`` maps a proxy's identity (its URL) to its snapshot."""
        for proxy, snap in snapshots.items():
            samples = self._samples.setdefault(proxy, deque())
            if samples and now <= samples[-1][0]:
                raise ValueError(f"sample for {proxy} at {now} is not after {samples[-1][0]}")
            samples.append((now, snap))
        self._prune(now)

    def _prune(self, now: float) -> None:
        cut = now - self.retention_seconds
        for proxy in list(self._samples):
            samples = self._samples[proxy]
            while len(samples) > 1 and samples[1][0] <= cut:
                samples.popleft()
            if samples[-1][0] < cut:
                del self._samples[proxy]

    def increases(
        self, *, now: float, window_seconds: float, route: str | None = None
    ) -> tuple[float, dict[SeriesKey, float]]:
        """(span covered, increase of every series, or only ``route``'s, summed over proxies)."""
        start = now - window_seconds
        total: dict[SeriesKey, float] = {}
        span = 0.0
        for samples in self._samples.values():
            points = _window_points(samples, start, now)
            if len(points) < 2:
                continue
            span = max(span, points[-1][0] - max(points[0][0], start))
            for (_, before), (_, after) in pairwise(points):
                if route is None:
                    _add_deltas(total, before.series, after.series)
                else:
                    _add_deltas(total, before.by_route.get(route, {}), after.by_route.get(route, {}))
        return span, total

    def figures(self, route: str, *, now: float, window_seconds: float) -> Figures | None:
        """Both tracks' figures for ``route``; ``None`` when fewer than two scrapes cover the window."""
        span, deltas = self.increases(now=now, window_seconds=window_seconds, route=route)
        if span <= 0:
            return None
        stable, canary = (track_figures(deltas, route, track) for track in TRACKS)
        return Figures(span, stable, canary, mirror_figures(deltas, route))


def _window_points(
    samples: deque[tuple[float, Snapshot]], start: float, now: float
) -> list[tuple[float, Snapshot]]:
    times = [t for t, _ in samples]
    first = max(bisect_right(times, start) - 1, 0)  # the baseline: newest sample at or before start
    last = bisect_right(times, now)
    return list(samples)[first:last]


def _add_deltas(
    total: dict[SeriesKey, float], before: Mapping[SeriesKey, float], after: Mapping[SeriesKey, float]
) -> None:
    for key, value in after.items():
        old = before.get(key, 0.0)
        delta = value - old if value >= old else value  # a decrease is a counter reset
        total[key] = total.get(key, 0.0) + delta


def track_figures(deltas: Mapping[SeriesKey, float], route: str, track: str) -> TrackFigures:
    requests = errors = 0.0
    buckets: list[tuple[float, float]] = []
    for (r, t, kind, disc), value in deltas.items():
        if r != route:
            continue
        if kind == _DECISION:
            if track == "canary":  # filed under stable, failed on canary
                requests += value
                errors += value
            continue
        if t != track:
            continue
        if kind == _CODE:
            requests += value
            if len(disc) == 3 and disc.startswith("5") and disc.isascii() and disc.isdigit():
                errors += value
        elif kind == _ERROR and disc == "overflow":
            errors -= value
        elif kind == _ERROR and disc == "truncated":
            errors += value
        elif kind == _BUCKET:
            buckets.append((float(disc), value))
    errors = min(max(errors, 0.0), requests)
    rate = 100.0 * errors / requests if requests else None
    p99 = histogram_quantile(QUANTILE, buckets)
    return TrackFigures(requests, errors, rate, None if p99 is None else p99 * 1000.0)


def mirror_figures(deltas: Mapping[SeriesKey, float], route: str) -> MirrorFigures | None:
    """The canary's figures from mirrored requests, and the comparison's; None when nothing was mirrored."""
    results = {disc: value for (r, _, kind, disc), value in deltas.items() if r == route and kind == _RESULT}
    track = track_figures(deltas, route, MIRROR)
    if not track.requests and not any(results.values()):
        return None
    compared, mismatches, rate = mismatch_rate(results)
    return MirrorFigures(track, compared, mismatches, rate)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus's ``histogram_quantile`` over (upper bound, cumulative count) pairs; needs a +Inf bucket."""
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    counts = [c for _, c in ordered]
    for i in range(1, len(counts)):  # deltas of independently reset buckets may break monotonicity
        counts[i] = max(counts[i], counts[i - 1])
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, c in enumerate(counts) if c >= rank)
    if index == len(ordered) - 1:
        return ordered[-2][0]
    upper = ordered[index][0]
    lower, below = (0.0, 0.0) if index == 0 else (ordered[index - 1][0], counts[index - 1])
    if index == 0 and upper <= 0:
        return upper
    in_bucket = counts[index] - below
    return lower + (upper - lower) * ((rank - below) / in_bucket) if in_bucket else upper
