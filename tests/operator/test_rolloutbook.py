"""The two hooks reconcile asks the rollout book: the weight to compile and the rollout's status fields."""

from __future__ import annotations

from typing import Any

import pytest
from graylane.operator.rollout.book import ROLLOUT_STATUS_FIELDS, RolloutBook

STEPS = {"steps": [{"weight": 10}, {"weight": 100}]}


def route(spec: dict[str, Any], status: dict[str, Any] | None = None, uid: str = "u1") -> dict[str, Any]:
    meta = {"name": "checkout", "namespace": "shop", "uid": uid, "generation": 1}
    return {"metadata": meta, "spec": {"stable": "a", "canary": "b", **spec}, "status": status or {}}


@pytest.mark.parametrize(
    ("spec", "status", "weight"),
    [
        ({"weight": 7}, {}, 7.0),  # no rollout: spec.weight
        ({"weight": 7, "rollout": STEPS}, {}, 10.0),  # not started yet: the first step
        ({"weight": 7, "rollout": {**STEPS, "abort": True}}, {"phase": "Paused", "canaryWeight": 1}, 0.0),
        ({"weight": 7, "rollout": {"steps": [{"weight": 50}, {"weight": 10}]}}, {}, 0.0),  # invalid
        ({"weight": 0, "rollout": STEPS}, {"phase": "RolledBack", "canaryWeight": 0, "currentStep": 0}, 0.0),
        ({"weight": 0, "rollout": STEPS}, {"phase": "Paused", "canaryWeight": 35}, 35.0),  # read back
        ({"weight": 0, "rollout": STEPS}, {"phase": "Ready", "canaryWeight": 35}, 10.0),  # not ours
    ],
    ids=["plain", "fresh", "abort", "invalid", "rolled-back", "resumed-from-status", "foreign-phase"],
)  # fmt: skip
def test_weight_of(spec: dict[str, Any], status: dict[str, Any], weight: float) -> None:
    assert RolloutBook().weight_of(route(spec, status)) == weight


def test_status_extra_reads_back_status_and_keeps_the_rollout_conditions() -> None:
    conditions = [{"type": "Ready", "status": "True"}, {"type": "Propagated", "status": "True"}]
    status = {"phase": "Progressing", "canaryWeight": 10, "currentStep": 1, "failedChecks": 1,
              "canaryRevision": "b/x/1", "conditions": conditions}  # fmt: skip
    extra = RolloutBook().status_extra(route({"rollout": STEPS}, status))
    assert extra["phase"] == "Progressing" and extra["currentStep"] == 1 and extra["failedChecks"] == 1
    assert "canaryWeight" not in extra  # the weight in status is the one the ConfigMap has
    assert extra["conditions"] == [{"type": "Propagated", "status": "True"}]


def test_status_extra_for_an_invalid_rollout_names_the_field() -> None:
    extra = RolloutBook().status_extra(route({"rollout": {"steps": [{"weight": 50}, {"weight": 10}]}}))
    assert extra["phase"] == "Invalid" and "spec.rollout.steps[1].weight" in extra["message"]


def test_status_extra_clears_the_fields_once_the_rollout_is_removed() -> None:
    status = {
        "phase": "Promoted",
        "currentStep": 2,
        "message": "promoted",
        "lastAnalysis": {"verdict": "Pass"},
    }
    extra = RolloutBook().status_extra(route({"weight": 100}, status))
    assert extra == {"currentStep": None, "message": None, "lastAnalysis": None}
    assert set(extra) <= set(ROLLOUT_STATUS_FIELDS)


def test_forget_reads_status_back_next_time() -> None:
    book = RolloutBook()
    first = route({"rollout": STEPS}, {"phase": "Paused", "canaryWeight": 35})
    assert book.weight_of(first) == 35
    book.forget("u1")
    assert book.weight_of(route({"rollout": STEPS}, {"phase": "Progressing", "canaryWeight": 10})) == 10
