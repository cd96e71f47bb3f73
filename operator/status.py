"""The CanaryRoute status the operator wants, and the smallest patch that gets there (pure)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graylane.tls.certificate import CONDITIONS

COMPILED = "Compiled"
INVALID = "Invalid"
UPSTREAM_NOT_FOUND = "UpstreamNotFound"
CONFLICT = "Conflict"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_MIRRORING_DISABLED = "SecretMirroringDisabled"
INVALID_ROLLOUT = "InvalidRollout"
TLS_REASONS = frozenset(CONDITIONS.values())  # InvalidTLS, TLSSecretNotFound, TLSCertificateExpired, ...
"""Not Ready, yet the route's ConfigMap is written and serves (plain HTTP, and HTTPS on the last good
certificate): its rollout goes on, and a rollout phase is kept."""
OWNED_FIELDS = ("phase", "canaryWeight", "observedGeneration", "configMap", "checksum", "conditions")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one reconcile: Ready or not, why (a condition reason) and a message with field paths."""

    ready: bool
    reason: str
    message: str


def ready_condition(
    verdict: Verdict, *, generation: int, previous: Any, now: datetime.datetime
) -> dict[str, Any]:
    status = "True" if verdict.ready else "False"
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for cond in previous if isinstance(previous, list) else []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready" and cond.get("status") == status:
            since = str(cond.get("lastTransitionTime") or since)
    return {
        "type": "Ready",
        "status": status,
        "reason": verdict.reason,
        "message": verdict.message[:4000],
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


def desired_status(
    verdict: Verdict,
    *,
    current: Mapping[str, Any],
    generation: int,
    weight: float | None,
    config_map: str | None,
    checksum: str | None,
    now: datetime.datetime,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The operator-owned status fields; ``extra`` lets later loops (rollout) add theirs.

    A route that compiles but whose rollout is invalid (``extra`` says phase Invalid) is not Ready either: its
    ConfigMap still serves (all to stable), and the Ready condition carries the rollout's field paths.
    """
    extra = dict(extra or {})
    if verdict.ready and extra.get("phase") == INVALID:
        verdict = Verdict(False, INVALID_ROLLOUT, str(extra.get("message") or "spec.rollout: invalid"))
    out: dict[str, Any] = {
        "phase": "Ready" if verdict.ready else "Invalid",
        "canaryWeight": weight,
        "observedGeneration": generation,
        "configMap": config_map,
        "checksum": checksum,
        "conditions": [
            ready_condition(verdict, generation=generation, previous=current.get("conditions"), now=now)
        ],
    }
    more = extra.pop("conditions", None) or []
    if not verdict.ready and verdict.reason not in TLS_REASONS:
        extra.pop("phase", None)  # a route that does not compile is Invalid, whatever its rollout says
    out.update(extra)
    out["conditions"] += [c for c in more if isinstance(c, Mapping) and c.get("type") != "Ready"]
    return out


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch for ``status`` (``None`` when nothing differs); forged values are overwritten."""
    patch = {k: v for k, v in desired.items() if current.get(k) != v}
    return patch or None
