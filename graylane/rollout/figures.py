"""The figures one analysis check judges: per track, and the mirror's (shadow traffic); ``lastAnalysis``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TrackFigures:
    requests: float
    errors: float
    error_rate: float | None  # percent of requests; None without requests
    p99_latency_ms: float | None  # None without observations

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": _num(self.requests),
            "errors": _num(self.errors),
            "errorRate": None if self.error_rate is None else round(self.error_rate, 3),
            "p99LatencyMs": None if self.p99_latency_ms is None else round(self.p99_latency_ms, 3),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrackFigures:
        return cls(
            float(raw.get("requests", 0)),
            float(raw.get("errors", 0)),
            _opt_float(raw.get("errorRate")),
            _opt_float(raw.get("p99LatencyMs")),
        )


@dataclass(frozen=True, slots=True)
class MirrorFigures:
    """The canary as seen through mirrored requests: its answers (``track`` figures: requests it was sent,
    errors, p99) and how they compared with stable's (``compared`` pairs, ``mismatches`` among them)."""

    track: TrackFigures
    compared: float
    mismatches: float
    mismatch_rate: float | None  # percent of compared pairs; None without any

    def to_dict(self) -> dict[str, Any]:
        return self.track.to_dict() | {
            "compared": _num(self.compared),
            "mismatches": _num(self.mismatches),
            "mismatchRate": None if self.mismatch_rate is None else round(self.mismatch_rate, 3),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MirrorFigures:
        return cls(
            TrackFigures.from_dict(raw),
            float(raw.get("compared", 0)),
            float(raw.get("mismatches", 0)),
            _opt_float(raw.get("mismatchRate")),
        )


@dataclass(frozen=True, slots=True)
class Figures:
    """Both tracks' figures over ``window_seconds`` (the span the samples actually cover), and the mirror's
    when the proxies mirrored anything in the window."""

    window_seconds: float
    stable: TrackFigures
    canary: TrackFigures
    mirror: MirrorFigures | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "windowSeconds": round(self.window_seconds, 3),
            "stable": self.stable.to_dict(),
            "canary": self.canary.to_dict(),
        }
        if self.mirror is not None:
            out["mirror"] = self.mirror.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Figures:
        mirror = raw.get("mirror")
        return cls(
            float(raw.get("windowSeconds", 0)),
            TrackFigures.from_dict(raw.get("stable") or {}),
            TrackFigures.from_dict(raw.get("canary") or {}),
            MirrorFigures.from_dict(mirror) if isinstance(mirror, Mapping) else None,
        )


def _num(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 3)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
