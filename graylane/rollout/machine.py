"""The rollout state machine: one pure ``step`` per analysis interval, all state in ``status`` (restart-safe).

Rules, in the order ``step`` applies them:

1. ``abort: true`` wins over everything: phase ``Aborted``, canary weight 0 in this very step.
2. A new canary revision (or no rollout state yet) starts the rollout at step 0.
   Clearing ``abort`` after ``Aborted`` also starts again at step 0 (this is how to retry the same revision).
3. ``Promoted`` and ``RolledBack`` hold. After a rollback the weight stays 0 until the user *acts*: a new
   canary revision, or ``abort: true`` followed (once the phase shows ``Aborted``) by ``abort: false``.
   ``kubectl graylane resume`` does the latter for you.
4. A manual ``spec.weight`` change during an active rollout (``Progressing``/``Paused``), compared with the
   ``spec.weight`` recorded when the rollout started (``status.rolloutSpecWeight``): 100 promotes at once;
   any other value pauses the rollout at that weight. Putting ``spec.weight`` back to the recorded value
   resumes at the current step (``kubectl graylane resume`` does that).
5. The analysis runs while ``Progressing`` and while paused: a failed check counts; ``failureThreshold``
   consecutive failed checks roll back (weight 0, phase ``RolledBack``, reason and figures in status).
   A passing check resets the count; a check without a verdict (fewer than ``minRequests`` canary
   requests, no data, a failed scrape) leaves it as it is and never advances.
6. ``paused: true`` holds the weight (phase ``Paused``); ``paused: false`` resumes the step's pause clock.
7. The step advances when its pause has elapsed *and* this interval's check passed; after the last step
   the route is ``Promoted`` with weight 100.

A *shadow step* (``{mirror: 100}``) keeps the weight at 0 and sets ``mirror_percent``: the proxies mirror
that share of stable's requests to the canary, and the check judges the canary on the mirror's figures
(error rate, p99, latency ratio, ``maxMismatchRate``). Leaving it (advance, manual weight, promote, abort,
rollback) sets ``mirror_percent`` back to None: ``spec.mirror`` applies as written again.

``SCRAPE_ERROR_LIMIT`` consecutive failed scrapes set ``metricsUnavailable`` in status (for a condition).
Events are ``"Reason: message"`` strings; :func:`split_event` gives the Kubernetes event type too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from graylane.rollout.analysis import Figures
from graylane.rollout.spec import AnalysisSpec, RolloutSpec, RolloutSpecError, Step, parse_rollout_spec
from graylane.rollout.status import (
    ABORTED,
    ACTIVE,
    PAUSED,
    PHASES,
    PROGRESSING,
    PROMOTED,
    ROLLED_BACK,
    SCRAPE_ERROR_LIMIT,
    RolloutStatus,
    iso,
)
from graylane.rollout.verdict import Verdict, judge

__all__ = [
    "ABORTED", "PAUSED", "PHASES", "PROGRESSING", "PROMOTED", "ROLLED_BACK", "SCRAPE_ERROR_LIMIT",
    "AnalysisSpec", "RolloutSpec", "RolloutSpecError", "RolloutStatus", "Step", "Verdict", "canary_revision",
    "judge", "parse_rollout_spec", "split_event", "step",
]  # fmt: skip

WARNING_REASONS = frozenset({"Aborted", "RolledBack", "AnalysisFailed", "MetricsUnavailable"})


def step(
    spec: RolloutSpec,
    status: RolloutStatus,
    *,
    now: datetime,
    figures: Figures | None,
    scrape_ok: bool,
    canary_revision: str,
    manual_weight: float | None,
) -> tuple[RolloutStatus, list[str]]:
    """One analysis interval. ``manual_weight`` is the route's current ``spec.weight`` (``None`` if unset)."""
    if spec.abort:
        return _abort(status, canary_revision)
    if status.canary_revision != canary_revision or status.phase is None:
        return _start(
            spec, now=now, revision=canary_revision, manual_weight=manual_weight, why="RolloutStarted"
        )
    if status.phase == ABORTED:
        return _start(
            spec, now=now, revision=canary_revision, manual_weight=manual_weight, why="RolloutRetried"
        )
    if status.phase not in ACTIVE:
        return status, []
    if _manual_change(status, manual_weight) and manual_weight == 100:
        return _promote(status, "spec.weight was set to 100 by hand")
    status, events, passed = _observe(spec, status, now=now, figures=figures, scrape_ok=scrape_ok)
    if status.phase == ROLLED_BACK:
        return status, events
    status, more = _steer(spec, status, now=now, manual_weight=manual_weight, passed=passed)
    return status, events + more


def canary_revision(route: Mapping[str, Any], canary: Mapping[str, Any] | None) -> str:
    """The canary's identity for ``step``: ``<name>/<uid>/<generation>`` of the canary Upstream.

    Naming another Upstream, recreating it, or changing its spec (new generation) restarts the rollout.
    """
    name = str((route.get("spec") or {}).get("canary", ""))
    meta = (canary or {}).get("metadata") or {}
    if not canary or not meta.get("uid"):
        return f"{name}/missing"
    return f"{name}/{meta['uid']}/{meta.get('generation', 0)}"


def split_event(event: str) -> tuple[str, str, str]:
    """``"RolledBack: …"`` → (``"Warning"``, ``"RolledBack"``, ``"…"``) for a Kubernetes Event."""
    reason, _, message = event.partition(": ")
    return ("Warning" if reason in WARNING_REASONS else "Normal", reason, message)


def _abort(status: RolloutStatus, revision: str) -> tuple[RolloutStatus, list[str]]:
    if status.phase == ABORTED:
        return replace(status, canary_revision=revision), []
    message = "aborted by spec.rollout.abort; canary weight 0 until abort is cleared"
    new = replace(
        status,
        phase=ABORTED,
        canary_weight=0.0,
        canary_revision=revision,
        message=message,
        mirror_percent=None,
    )
    return new, [f"Aborted: {message} (was {_weight(status.canary_weight)})"]


def _start(
    spec: RolloutSpec, *, now: datetime, revision: str, manual_weight: float | None, why: str
) -> tuple[RolloutStatus, list[str]]:
    first = spec.steps[0]
    phase = PAUSED if spec.paused else PROGRESSING
    message = f"step 1/{len(spec.steps)} {_describe(first)}" + (" (paused)" if spec.paused else "")
    new = RolloutStatus(
        phase=phase,
        step_started_at=now,
        canary_weight=first.weight,
        canary_revision=revision,
        message=message,
        rollout_spec_weight=manual_weight,
        mirror_percent=first.mirror,
    )
    return new, [f"{why}: canary revision {revision}, {message}"]


def _promote(status: RolloutStatus, why: str) -> tuple[RolloutStatus, list[str]]:
    message = f"promoted: {why}; the canary carries all traffic"
    promoted = replace(
        status, phase=PROMOTED, canary_weight=100.0, failed_checks=0, message=message, mirror_percent=None
    )
    return promoted, [f"Promoted: {message}"]


def _observe(
    spec: RolloutSpec, status: RolloutStatus, *, now: datetime, figures: Figures | None, scrape_ok: bool
) -> tuple[RolloutStatus, list[str], bool]:
    """Count scrape errors and failed checks; roll back at the threshold. The bool: this check passed."""
    if not scrape_ok or figures is None:
        errors = 0 if scrape_ok else status.consecutive_scrape_errors + 1
        new = replace(status, consecutive_scrape_errors=errors, message=_hold_message(status, scrape_ok))
        if errors == SCRAPE_ERROR_LIMIT:
            return (
                new,
                [f"MetricsUnavailable: {errors} consecutive scrapes of the proxies' metrics failed"],
                False,
            )
        return new, [], False
    verdict = judge(spec.analysis, figures, shadow=status.mirror_percent is not None)
    analysis: dict[str, Any] = {"at": iso(now), "verdict": verdict.result, "reasons": list(verdict.reasons)}
    analysis.update(figures.to_dict())
    new = replace(status, consecutive_scrape_errors=0, last_analysis=analysis)
    if verdict.result == "Inconclusive":
        return replace(new, message="holding, no verdict: " + "; ".join(verdict.reasons)), [], False
    if verdict.result == "Pass":
        return replace(new, failed_checks=0), [], True
    failed = status.failed_checks + 1
    threshold = spec.analysis.failure_threshold
    reasons = "; ".join(verdict.reasons)
    if failed < threshold:
        message = f"failed check {failed}/{threshold}: {reasons}"
        return replace(new, failed_checks=failed, message=message), [f"AnalysisFailed: {message}"], False
    message = f"rolled back after {failed} failed checks: {reasons}; canary weight 0 until the user acts"
    if status.mirror_percent is not None:
        message += " (a shadow step: no user was routed to the canary)"
    rolled = replace(
        new, phase=ROLLED_BACK, canary_weight=0.0, failed_checks=failed, message=message, mirror_percent=None
    )
    return rolled, [f"RolledBack: {message}"], False


def _steer(
    spec: RolloutSpec, status: RolloutStatus, *, now: datetime, manual_weight: float | None, passed: bool
) -> tuple[RolloutStatus, list[str]]:
    """Pause, resume or advance (after the analysis of this interval)."""
    if _manual_change(status, manual_weight):
        assert manual_weight is not None
        message = (
            f"paused at {_weight(manual_weight)}: spec.weight was changed by hand "
            f"(set it back to {_weight(status.rollout_spec_weight or 0)} or run `kubectl graylane resume`)"
        )
        event = (
            [] if status.phase == PAUSED and status.canary_weight == manual_weight else [f"Paused: {message}"]
        )
        paused = replace(
            status, phase=PAUSED, canary_weight=manual_weight, message=message, mirror_percent=None
        )
        return paused, event
    current = spec.steps[min(status.current_step, len(spec.steps) - 1)]
    if spec.paused:
        event = [] if status.phase == PAUSED else ["Paused: spec.rollout.paused is true"]
        message = "paused by spec.rollout.paused"
        paused = replace(
            status, phase=PAUSED, canary_weight=current.weight, message=message, mirror_percent=current.mirror
        )
        return paused, event
    if status.phase == PAUSED:
        message = f"resumed at step {status.current_step + 1}/{len(spec.steps)} ({_describe(current)})"
        resumed = replace(
            status, phase=PROGRESSING, canary_weight=current.weight, step_started_at=now, message=message,
            mirror_percent=current.mirror,
        )  # fmt: skip
        return resumed, [f"Resumed: {message}"]
    if not passed or not _pause_elapsed(status, current, now):
        return status, []
    return _advance(spec, status, now=now)


def _advance(spec: RolloutSpec, status: RolloutStatus, *, now: datetime) -> tuple[RolloutStatus, list[str]]:
    following = status.current_step + 1
    if following >= len(spec.steps):
        return _promote(status, f"all {len(spec.steps)} steps passed")
    upcoming = spec.steps[following]
    message = f"step {following + 1}/{len(spec.steps)} {_describe(upcoming)}"
    new = replace(
        status,
        current_step=following,
        step_started_at=now,
        canary_weight=upcoming.weight,
        failed_checks=0,
        message=message,
        mirror_percent=upcoming.mirror,
    )
    return new, [f"StepAdvanced: {message}"]


def _manual_change(status: RolloutStatus, manual_weight: float | None) -> bool:
    return manual_weight is not None and manual_weight != status.rollout_spec_weight


def _pause_elapsed(status: RolloutStatus, current: Step, now: datetime) -> bool:
    if status.step_started_at is None:
        return True
    return (now - status.step_started_at).total_seconds() >= current.pause_seconds


def _hold_message(status: RolloutStatus, scrape_ok: bool) -> str:
    what = "scraping the proxies' metrics failed" if not scrape_ok else "no metrics in the window yet"
    return f"holding at {_weight(status.canary_weight)}: {what}"


def _weight(value: float) -> str:
    return f"{value:g}%"


def _describe(step: Step) -> str:
    """``at 10%``, or for a shadow step ``shadow: 100% mirrored, weight 0%``."""
    if step.mirror is not None:
        return f"shadow: {_weight(step.mirror)} mirrored, weight {_weight(step.weight)}"
    return f"at {_weight(step.weight)}"
