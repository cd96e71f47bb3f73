"""``spec.rollout`` of a CanaryRoute, parsed once into frozen dataclasses; errors carry field paths.

```yaml
rollout:
  steps: [{mirror: 100, pause: 5m},         # a shadow step: weight 0, 100% of stable's requests mirrored
          {weight: 1, pause: 2m}, {weight: 10, pause: 5m}, {weight: 100}]   # non-decreasing, 0-100
  interval: 10s              # how often the analysis runs                         (default 10s)
  analysis:
    window: 1m               # sliding window of the figures                       (default 1m)
    maxErrorRate: 1          # % of canary requests failed by the upstream         (default 1)
    maxP99LatencyMs: 500     # canary p99 limit                                    (default: off)
    maxLatencyRatio: 1.5     # canary p99 / stable p99 limit                       (default: off)
    minRequests: 50          # fewer canary requests in the window = no verdict    (default 50)
    failureThreshold: 2      # consecutive failed checks before rolling back       (default 2)
    maxMismatchRate: 5       # shadow steps: % of compared pairs that differ       (default: off)
  paused: false
  abort: false
```
Durations are Go-style: ``500ms``, ``10s``, ``2m``, ``1h``, ``1m30s``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.model import FieldError

MAX_STEPS = 100
_DURATION = re.compile(r"(?:\d{1,9}(?:\.\d{1,9})?(?:ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
ROLLOUT_KEYS = ("steps", "interval", "analysis", "paused", "abort")
_ANALYSIS_KEYS = (
    "window", "maxErrorRate", "maxP99LatencyMs", "maxLatencyRatio", "minRequests", "failureThreshold",
    "maxMismatchRate",
)  # fmt: skip


class RolloutSpecError(ValueError):
    """``spec.rollout`` is invalid; ``errors`` lists every problem with its field path."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("invalid rollout: " + "; ".join(str(e) for e in self.errors[:10]))


@dataclass(frozen=True, slots=True)
class Step:
    weight: float
    pause_seconds: float = 0.0
    mirror: float | None = None
    """A shadow step's mirror percent (its weight is 0): the canary is judged on mirrored traffic only."""


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    window_seconds: float = 60.0
    max_error_rate: float | None = 1.0
    max_p99_latency_ms: float | None = None
    max_latency_ratio: float | None = None
    min_requests: int = 50
    failure_threshold: int = 2
    max_mismatch_rate: float | None = None


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    steps: tuple[Step, ...]
    interval_seconds: float = 10.0
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    paused: bool = False
    abort: bool = False


def parse_duration(text: str) -> float:
    """``"1m30s"`` → 90.0. Raises ``ValueError`` on anything else."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration like 10s, 2m, 1h or 1m30s")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def parse_rollout_spec(raw: Any, path: str = "spec.rollout") -> RolloutSpec:
    """Validate and freeze ``spec.rollout``; raises :class:`RolloutSpecError` listing every problem."""
    check = FieldChecker()
    spec = _rollout(check, raw, path)
    if check.errors or spec is None:
        raise RolloutSpecError(check.errors or [FieldError(path, "is invalid")])
    return spec


def _rollout(check: FieldChecker, raw: Any, path: str) -> RolloutSpec | None:
    obj = check.obj(raw, path, required=("steps",), optional=ROLLOUT_KEYS)
    if obj is None:
        return None
    steps = _steps(check, obj["steps"], join(path, "steps")) if "steps" in obj else ()
    interval = _duration(check, obj.get("interval", "10s"), join(path, "interval"), lo=1.0, hi=3600.0)
    analysis = _analysis(check, obj.get("analysis", {}), join(path, "analysis"))
    paused = check.boolean(obj.get("paused", False), join(path, "paused"))
    abort = check.boolean(obj.get("abort", False), join(path, "abort"))
    if interval is None or analysis is None or paused is None or abort is None:
        return None
    return RolloutSpec(steps, interval, analysis, paused, abort)


def _steps(check: FieldChecker, raw: Any, path: str) -> tuple[Step, ...]:
    """Weighted steps never decrease; a shadow step (``mirror``) counts as weight 0, so it comes first."""
    steps: list[Step] = []
    previous = 0.0
    for i, item in enumerate(check.array(raw, path, min_len=1, max_len=MAX_STEPS)):
        where = join(path, i)
        obj = check.obj(item, where, optional=("weight", "pause", "mirror"))
        if obj is None:
            continue
        if "weight" not in obj and "mirror" not in obj:
            check.error(join(where, "weight"), "required field is missing (or mirror, for a shadow step)")
            continue
        if "weight" in obj and "mirror" in obj:
            check.error(where, "needs exactly one of weight and mirror")
            continue
        key = "weight" if "weight" in obj else "mirror"
        value = check.number(obj[key], join(where, key), lo=0, hi=100)
        pause = _duration(check, obj.get("pause", "0s"), join(where, "pause"), lo=0.0, hi=7 * 86400.0)
        if value is None or pause is None:
            continue
        weight = value if key == "weight" else 0.0
        if round(value, 2) != value:
            check.error(join(where, key), "must have at most two decimals")
        elif key == "mirror" and value == 0:
            check.error(join(where, key), "must be above 0 (a shadow step mirrors something)")
        elif weight < previous and key == "mirror":
            check.error(where, f"a shadow step keeps the weight at 0: it cannot follow weight {previous:g}")
        elif weight < previous:
            check.error(join(where, key), f"must not be lower than the step before ({previous:g})")
        previous = max(previous, weight)
        steps.append(Step(weight, pause, None if key == "weight" else value))
    return tuple(steps)


def _analysis(check: FieldChecker, raw: Any, path: str) -> AnalysisSpec | None:
    obj = check.obj(raw, path, optional=_ANALYSIS_KEYS)
    if obj is None:
        return None
    window = _duration(check, obj.get("window", "1m"), join(path, "window"), lo=1.0, hi=86400.0)
    max_rate = _optional_number(check, obj, "maxErrorRate", path, default=1.0, lo=0, hi=100)
    max_p99 = _optional_number(check, obj, "maxP99LatencyMs", path, default=None, lo=0.001, hi=3.6e6)
    max_ratio = _optional_number(check, obj, "maxLatencyRatio", path, default=None, lo=1.0, hi=1000)
    min_requests = check.integer(obj.get("minRequests", 50), join(path, "minRequests"), lo=1, hi=10**9)
    threshold = check.integer(obj.get("failureThreshold", 2), join(path, "failureThreshold"), lo=1, hi=1000)
    max_mismatch = _optional_number(check, obj, "maxMismatchRate", path, default=None, lo=0, hi=100)
    if window is None or min_requests is None or threshold is None or check.errors:
        return None
    return AnalysisSpec(window, max_rate, max_p99, max_ratio, min_requests, threshold, max_mismatch)


def _optional_number(
    check: FieldChecker,
    obj: Mapping[str, Any],
    key: str,
    path: str,
    *,
    default: float | None,
    lo: float,
    hi: float,
) -> float | None:
    if key not in obj or obj[key] is None:
        return default
    return check.number(obj[key], join(path, key), lo=lo, hi=hi)


def _duration(check: FieldChecker, raw: Any, path: str, *, lo: float, hi: float) -> float | None:
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        check.error(path, str(exc))
        return None
    if not lo <= seconds <= hi:
        check.error(path, f"must be between {lo:g}s and {hi:g}s")
        return None
    return seconds
