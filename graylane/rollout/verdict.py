"""The verdict of one analysis check: ``Pass``, ``Fail`` or ``Inconclusive`` (never counts as healthy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graylane.rollout.analysis import Figures
from graylane.rollout.spec import AnalysisSpec

Result = Literal["Pass", "Fail", "Inconclusive"]


@dataclass(frozen=True, slots=True)
class Verdict:
    result: Result
    reasons: tuple[str, ...] = ()


def judge(analysis: AnalysisSpec, figures: Figures) -> Verdict:
    """Check the canary's figures against the limits; every failed limit is named in ``reasons``.

    The latency ratio is only checked when stable also served ``minRequests`` in the window (a ratio to a
    p99 of a handful of requests is noise).
    """
    canary, stable = figures.canary, figures.stable
    if canary.requests < analysis.min_requests:
        return Verdict(
            "Inconclusive",
            (f"canary served {canary.requests:g} of minRequests {analysis.min_requests} in the window",),
        )
    reasons: list[str] = []
    limit = analysis.max_error_rate
    if limit is not None and canary.error_rate is not None and canary.error_rate > limit:
        reasons.append(f"canary error rate {canary.error_rate:.3g}% > {limit:g}%")
    p99 = canary.p99_latency_ms
    if analysis.max_p99_latency_ms is not None and p99 is not None and p99 > analysis.max_p99_latency_ms:
        reasons.append(f"canary p99 {p99:.4g} ms > {analysis.max_p99_latency_ms:g} ms")
    ratio_limit, base = analysis.max_latency_ratio, stable.p99_latency_ms
    if (
        ratio_limit is not None
        and p99 is not None
        and base
        and stable.requests >= analysis.min_requests
        and p99 / base > ratio_limit
    ):
        reasons.append(
            f"canary p99 {p99:.4g} ms is {p99 / base:.3g}x stable's {base:.4g} ms > {ratio_limit:g}x"
        )
    return Verdict("Fail", tuple(reasons)) if reasons else Verdict("Pass")
