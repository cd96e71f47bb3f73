"""The rollout's part of ``CanaryRoute.status``, with a lenient reader (status can be tampered with)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PROGRESSING, PAUSED, PROMOTED, ROLLED_BACK, ABORTED = (
    "Progressing",
    "Paused",
    "Promoted",
    "RolledBack",
    "Aborted",
)
PHASES = (PROGRESSING, PAUSED, PROMOTED, ROLLED_BACK, ABORTED)
ACTIVE = (PROGRESSING, PAUSED)
SCRAPE_ERROR_LIMIT = 4


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """The rollout's part of ``CanaryRoute.status``; :meth:`to_dict` / :meth:`from_dict` round-trip."""

    phase: str | None = None
    current_step: int = 0
    step_started_at: datetime | None = None
    failed_checks: int = 0
    last_analysis: Mapping[str, Any] | None = None
    canary_weight: float = 0.0
    canary_revision: str | None = None
    consecutive_scrape_errors: int = 0
    message: str = ""
    rollout_spec_weight: float | None = None
    mirror_percent: float | None = None  # a shadow step's mirror percent, applied now; None outside them

    @property
    def metrics_unavailable(self) -> bool:
        return self.consecutive_scrape_errors >= SCRAPE_ERROR_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "currentStep": self.current_step,
            "stepStartedAt": None if self.step_started_at is None else iso(self.step_started_at),
            "failedChecks": self.failed_checks,
            "lastAnalysis": None if self.last_analysis is None else dict(self.last_analysis),
            "canaryWeight": self.canary_weight,
            "canaryRevision": self.canary_revision,
            "consecutiveScrapeErrors": self.consecutive_scrape_errors,
            "metricsUnavailable": self.metrics_unavailable,
            "message": self.message,
            "rolloutSpecWeight": self.rollout_spec_weight,
            "mirrorPercent": self.mirror_percent,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RolloutStatus:
        """Lenient: a missing or malformed field reads as its default (the machine then starts afresh)."""
        raw = raw or {}
        phase = raw.get("phase")
        return cls(
            phase=phase if phase in PHASES else None,
            current_step=_int(raw.get("currentStep")),
            step_started_at=_parse_time(raw.get("stepStartedAt")),
            failed_checks=_int(raw.get("failedChecks")),
            last_analysis=raw.get("lastAnalysis") if isinstance(raw.get("lastAnalysis"), Mapping) else None,
            canary_weight=_float(raw.get("canaryWeight")) or 0.0,
            canary_revision=_str(raw.get("canaryRevision")),
            consecutive_scrape_errors=_int(raw.get("consecutiveScrapeErrors")),
            message=_str(raw.get("message")) or "",
            rollout_spec_weight=_float(raw.get("rolloutSpecWeight")),
            mirror_percent=_float(raw.get("mirrorPercent")),
        )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
