"""desired_status: the Ready condition follows both the compile verdict and the rollout's validity (pure)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from graylane.operator import status as st

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)
COMPILED = st.Verdict(True, st.COMPILED, "compiled")
MISSING = st.Verdict(False, st.UPSTREAM_NOT_FOUND, "spec.canary: Upstream shop/v2 not found")
BAD_ROLLOUT = {"phase": "Invalid", "message": "spec.rollout.steps[1].weight: must not decrease"}
EXPIRED = st.Verdict(False, "TLSCertificateExpired", "spec.tls.secretName: Secret s/t: tls.crt[0]: expired")


def ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


@pytest.mark.parametrize(
    ("verdict", "extra", "phase", "ready_status", "reason", "in_message"),
    [
        (COMPILED, {}, "Ready", "True", st.COMPILED, "compiled"),
        (COMPILED, {"phase": "Progressing"}, "Progressing", "True", st.COMPILED, "compiled"),
        (COMPILED, BAD_ROLLOUT, "Invalid", "False", st.INVALID_ROLLOUT, "spec.rollout.steps[1].weight"),
        (MISSING, BAD_ROLLOUT, "Invalid", "False", st.UPSTREAM_NOT_FOUND, "spec.canary"),
        (MISSING, {"phase": "Progressing"}, "Invalid", "False", st.UPSTREAM_NOT_FOUND, "spec.canary"),
        (EXPIRED, {}, "Invalid", "False", "TLSCertificateExpired", "tls.crt[0]"),
        (EXPIRED, {"phase": "Progressing"}, "Progressing", "False", "TLSCertificateExpired", "expired"),
    ],
    ids=["plain", "rollout-running", "invalid-rollout", "both-invalid", "not-compiled-hides-rollout-phase",
         "tls-problem", "tls-problem-keeps-the-rollout-phase"],
)  # fmt: skip
def test_ready_condition(
    verdict: st.Verdict, extra: dict[str, Any], phase: str, ready_status: str, reason: str, in_message: str
) -> None:
    out = st.desired_status(verdict, current={}, generation=3, weight=0.0, config_map="graylane/c",
                            checksum="x", now=NOW, extra=extra)  # fmt: skip
    cond = ready(out)
    assert (out["phase"], cond["status"], cond["reason"]) == (phase, ready_status, reason)
    assert in_message in cond["message"]
    assert cond["observedGeneration"] == 3


def test_a_route_not_ready_for_a_tls_reason_is_still_stepped() -> None:
    """Its ConfigMap is written and served: the rollout loop goes on (rollbacks included)."""
    from graylane.operator.rollout.loop import _ready

    def route(reason: str) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": reason}]}}

    assert all(_ready(route(r)) for r in st.TLS_REASONS)
    assert not _ready(route(st.UPSTREAM_NOT_FOUND)) and not _ready(route(st.CONFLICT))
