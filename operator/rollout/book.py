"""What the rollout loop knows about each route, and the two hooks reconcile asks: weight and status fields.

The book is a cache of ``status``: a route it has not seen yet (a fresh operator, a takeover by another
replica) is read back from the route's own status, so a restarted operator resumes exactly where it was.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.operator.state import spec_weight

from graylane.rollout.machine import PHASES, RolloutSpec, RolloutSpecError, RolloutStatus, parse_rollout_spec

Route = Mapping[str, Any]
ROLLOUT_STATUS_FIELDS = (
    "currentStep", "stepStartedAt", "failedChecks", "lastAnalysis", "canaryRevision",
    "consecutiveScrapeErrors", "metricsUnavailable", "message", "rolloutSpecWeight", "mirrorPercent",
)  # fmt: skip
PROPAGATED, METRICS_AVAILABLE = "Propagated", "MetricsAvailable"


def rollout_of(route: Route) -> RolloutSpec | RolloutSpecError | None:
    """The parsed ``spec.rollout`` (``None`` without one; the error, with field paths, if invalid)."""
    raw = (route.get("spec") or {}).get("rollout")
    if raw is None:
        return None
    try:
        return parse_rollout_spec(raw)
    except RolloutSpecError as exc:
        return exc


def condition(
    kind: str, ok: bool, *, reason: str, message: str, generation: int, previous: Any, now: datetime.datetime
) -> dict[str, Any]:
    """A status condition; ``lastTransitionTime`` is kept while the status stays the same."""
    status = "True" if ok else "False"
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for cond in previous if isinstance(previous, list) else []:
        if isinstance(cond, Mapping) and cond.get("type") == kind and cond.get("status") == status:
            since = str(cond.get("lastTransitionTime") or since)
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:4000],
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


@dataclass
class RolloutBook:
    statuses: dict[str, RolloutStatus] = field(default_factory=dict)
    """The rollout state by route UID, as last decided by ``step`` (or read back from status)."""
    conditions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The Propagated and MetricsAvailable conditions by route UID."""

    def current(self, route: Route) -> RolloutStatus:
        """The route's rollout state: ours, or read back from its status (a restart or a takeover)."""
        uid = str(route["metadata"]["uid"])
        if uid not in self.statuses:
            status = route.get("status") or {}
            self.statuses[uid] = RolloutStatus.from_dict(status)
            self.conditions[uid] = [
                dict(c)
                for c in status.get("conditions") or []
                if isinstance(c, Mapping) and c.get("type") in (PROPAGATED, METRICS_AVAILABLE)
            ]
        return self.statuses[uid]

    def forget(self, uid: str) -> None:
        self.statuses.pop(uid, None)
        self.conditions.pop(uid, None)

    def weight_of(self, route: Route) -> float:
        """The canary weight to compile now: the rollout's, or ``spec.weight`` for routes without one."""
        spec = rollout_of(route)
        if spec is None:
            return float(spec_weight(route))
        if isinstance(spec, RolloutSpecError) or spec.abort:
            return 0.0  # an invalid rollout sends nothing to the canary; abort acts before the next interval
        current = self.current(route)
        return current.canary_weight if current.phase in PHASES else spec.steps[0].weight

    def mirror_of(self, route: Route) -> float | None:
        """The mirror percent of the rollout's shadow step now; None: ``spec.mirror`` as written applies."""
        spec = rollout_of(route)
        if spec is None or isinstance(spec, RolloutSpecError) or spec.abort:
            return None
        current = self.current(route)
        return current.mirror_percent if current.phase in PHASES else spec.steps[0].mirror

    def status_extra(self, route: Route) -> dict[str, Any]:
        """The rollout's status fields (merged into the operator's); clears them once the rollout is gone."""
        spec = rollout_of(route)
        status = route.get("status") or {}
        if spec is None:
            return {k: None for k in ROLLOUT_STATUS_FIELDS if status.get(k) is not None}
        if isinstance(spec, RolloutSpecError):
            return {"phase": "Invalid", "message": str(spec)[:4096]}
        current = self.current(route)
        if current.phase not in PHASES:
            return {}
        out = current.to_dict()
        out.pop("canaryWeight")  # the weight in status is the one written to the ConfigMap
        out["message"] = out["message"][:4096]
        out["conditions"] = self.conditions.get(str(route["metadata"]["uid"]), [])
        return out
