# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""The rollout state of TrafficPolicies as the Gateway controller asks it (no API server needed): the percent
compiled before, during and after a rollout, ``status.rollout`` read back by a fresh operator (restart-safe),
abort, and the block written to status without unset fields."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from graylane.operator.gateway.rollouts import PolicyRollouts

from graylane.gateway.objects import Key
from graylane.gateway.policy import TrafficPolicy, parse_traffic_policy
from graylane.gateway.policyplan import Ancestor

STEPS = [{"weight": 5}, {"weight": 25}, {"weight": 100}]


class Idle:
    """The controller side the state methods never touch (no API server, no policies listed)."""

    state: Any = None
    changed = asyncio.Event()

    def objects(self, store: str) -> Mapping[Key, Mapping[str, Any]]:
        return {}

    def ancestors(self, policy: Key) -> tuple[Ancestor, ...]:
        return ()


def policy(status: dict[str, Any] | None = None, **rollout: Any) -> TrafficPolicy:
    obj = {"metadata": {"name": "ramp", "namespace": "shop", "uid": "u-1", "generation": 1},
           "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "web"}],
                    "rollout": {"canary": "web-v2", "steps": STEPS, **rollout}}}  # fmt: skip
    if status is not None:
        obj["status"] = {"rollout": status}
    return parse_traffic_policy(obj)


@pytest.mark.parametrize(
    ("status", "rollout", "expected"),
    [
        (None, {}, 5.0),  # not started: the first step
        ({"phase": "Progressing", "currentStep": 1, "canaryWeight": 25}, {}, 25.0),  # a restart reads it back
        ({"phase": "RolledBack", "canaryWeight": 0}, {}, 0.0),
        ({"phase": "Promoted", "canaryWeight": 100}, {}, 100.0),
        ({"phase": "Progressing", "canaryWeight": 25}, {"abort": True}, 0.0),  # abort: 0 at once
        ({"phase": "Bogus", "canaryWeight": 60}, {}, 5.0),  # a tampered status starts afresh
    ],
)
def test_the_percent_compiled(
    status: dict[str, Any] | None, rollout: dict[str, Any], expected: float
) -> None:
    found = policy(status, **rollout)
    assert PolicyRollouts(Idle()).weights([found]) == {("shop", "ramp"): expected}


def test_status_block_leaves_unset_fields_out_and_a_policy_without_rollout_gets_none() -> None:
    rolling = policy({"phase": "Progressing", "currentStep": 1, "canaryWeight": 25, "message": "step 2/3"})
    block = PolicyRollouts(Idle()).status_block(rolling)
    assert block is not None and block["phase"] == "Progressing" and block["canaryWeight"] == 25
    assert None not in block.values() and "mirrorPercent" not in block
    assert PolicyRollouts(Idle()).status_block(policy()) is None, "nothing to say before the first step"
    invalid = policy(steps=[{"weight": 50}, {"weight": 10}])
    assert invalid.problem is not None and PolicyRollouts(Idle()).weights([invalid]) == {}
