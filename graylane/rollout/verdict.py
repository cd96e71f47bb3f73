"""The verdict of one analysis check: ``Pass``, ``Fail`` or ``Inconclusive`` (never counts as healthy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from graylane.rollout.analysis import Figures, TrackFigures
from graylane.rollout.spec import AnalysisSpec

Result = Literal["Pass", "Fail", "Inconclusive"]
NOTHING = TrackFigures(0, 0, None, None)


@dataclass(frozen=True, slots=True)
class Verdict:
    result: Result
    reasons: tuple[str, ...] = ()


def judge(analysis: AnalysisSpec, figures: Figures, *, shadow: bool = False) -> Verdict:
    """Check the canary's figures against the limits; every failed limit is named in ``reasons``.

    ``shadow`` (a shadow step: no user is routed to the canary) judges the canary on the mirror's figures
    instead, and adds ``maxMismatchRate`` on the pairs compared. The latency ratio is only checked when
    stable also served ``minRequests`` in the window (a ratio to a p99 of a handful of requests is noise).
    """
    mirror = figures.mirror
    subject, who = (
        (mirror.track if mirror else NOTHING, "canary (mirrored)") if shadow else (figures.canary, "canary")
    )
    if subject.requests < analysis.min_requests:
        return Verdict(
            "Inconclusive",
            (f"{who} served {subject.requests:g} of minRequests {analysis.min_requests} in the window",),
        )
    reasons = _limits(analysis, subject, figures.stable, who)
    limit = analysis.max_mismatch_rate
    if shadow and mirror is not None and limit is not None and (mirror.mismatch_rate or 0) > limit:
        reasons.append(
            f"mirror mismatch rate {mirror.mismatch_rate:.3g}% > {limit:g}% "
            f"({mirror.mismatches:g} of {mirror.compared:g} pairs differ)"
        )
    return Verdict("Fail", tuple(reasons)) if reasons else Verdict("Pass")


def _limits(analysis: AnalysisSpec, canary: TrackFigures, stable: TrackFigures, who: str) -> list[str]:
    reasons: list[str] = []
    limit = analysis.max_error_rate
    if limit is not None and canary.error_rate is not None and canary.error_rate > limit:
        reasons.append(f"{who} error rate {canary.error_rate:.3g}% > {limit:g}%")
    p99 = canary.p99_latency_ms
    if analysis.max_p99_latency_ms is not None and p99 is not None and p99 > analysis.max_p99_latency_ms:
        reasons.append(f"{who} p99 {p99:.4g} ms > {analysis.max_p99_latency_ms:g} ms")
    ratio_limit, base = analysis.max_latency_ratio, stable.p99_latency_ms
    if (
        ratio_limit is not None
        and p99 is not None
        and base
        and stable.requests >= analysis.min_requests
        and p99 / base > ratio_limit
    ):
        reasons.append(
            f"{who} p99 {p99:.4g} ms is {p99 / base:.3g}x stable's {base:.4g} ms > {ratio_limit:g}x"
        )
    return reasons
