# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""A TrafficPolicy's ``rollout`` on an HTTPRoute: the canary backendRef checked, the rule's weights while the
rollout owns them, the document's ``canary`` index (loader checks), the proxy's track labels for it and the
analysis summing those tracks into the route's ``stable`` and ``canary``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.config.model import Backend
from graylane.gateway.document import rollout_weights
from graylane.gateway.plan import Plan, plan
from graylane.rollout.analysis import MetricWindow, parse_snapshot
from graylane.routing.decide import RouteTable, decide
from graylane.routing.httprules import backend_track
from tests.unit.docs import errors_of, http_document, http_rule, load
from tests.unit.gwworld import NS, backend, gateway, http_route, parent, planned, traffic_policy, world
from tests.unit.views import view

ROLLOUT = {"canary": "infra-backend-v2", "steps": [{"weight": 10}, {"weight": 50}, {"weight": 100}]}
UPSTREAMS = {name: {"url": f"http://{name}.shop.svc:8080"} for name in ("v1", "v2", "v3")}


def shop(*backends: dict[str, Any]) -> dict[str, Any]:
    refs = list(backends) or [backend("infra-backend-v1", weight=90), backend("infra-backend-v2", weight=10)]
    rules = [{"name": "main", "backendRefs": refs},
             {"name": "other", "matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
              "backendRefs": [backend("infra-backend-v2", weight=1), backend("infra-backend-v1", weight=3)]}]  # fmt: skip
    return http_route("shop", parent("gw"), rules=rules)


def rules_with(policy: dict[str, Any], weights: dict[Any, float] | None = None) -> list[dict[str, Any]]:
    plan = planned(gateway("gw"), shop(), policy) if weights is None else _planned_with(policy, weights)
    (doc,) = plan.gateways[(NS, "gw")].documents.values()
    load(doc)  # the proxy's own loader accepts what the operator writes
    return list(doc["httpRules"])


def _planned_with(policy: dict[str, Any], weights: dict[Any, float]) -> Plan:
    return plan(replace(world(gateway("gw"), shop(), policy), rollout_weights=weights))


def test_the_first_step_applies_until_the_rollout_says_otherwise() -> None:
    main, other = rules_with(traffic_policy("ramp", "shop", rollout=ROLLOUT))
    assert (main["canary"], [b["weight"] for b in main["backends"]]) == (1, [9000, 1000])
    assert (other["canary"], [b["weight"] for b in other["backends"]]) == (0, [1000, 9000])


def test_the_rollout_weight_is_the_canary_share_of_each_rule() -> None:
    main, other = rules_with(traffic_policy("ramp", "shop", rollout=ROLLOUT), {(NS, "ramp"): 37.5})
    assert [b["weight"] for b in main["backends"]] == [6250, 3750]
    assert [b["weight"] for b in other["backends"]] == [3750, 6250]


def test_a_rollout_on_one_rule_leaves_the_others_as_written() -> None:
    main, other = rules_with(traffic_policy("ramp", "shop/main", rollout=ROLLOUT), {(NS, "ramp"): 0})
    assert [b["weight"] for b in main["backends"]] == [10000, 0] and main["canary"] == 1
    assert "canary" not in other and [b["weight"] for b in other["backends"]] == [1, 3]


@pytest.mark.parametrize(
    ("canary", "reason", "message"),
    [
        (
            "infra-backend-v3",
            "Invalid",
            "spec.rollout.canary: infra-backend-v3 is not a backendRef in rule 'main' of the HTTPRoute",
        ),
        (
            "infra-backend-v2:9999",
            "Invalid",
            "spec.rollout.canary: infra-backend-v2:9999 is not a backendRef",
        ),
        ("infra-backend-v2", "Accepted", ""),
    ],
)
def test_the_canary_must_be_a_backend_ref_of_every_rule(canary: str, reason: str, message: str) -> None:
    policy = traffic_policy("ramp", "shop", rollout={**ROLLOUT, "canary": canary})
    (ancestor,) = planned(gateway("gw"), shop(), policy).policies[(NS, "ramp")]
    assert ancestor.condition.reason == reason and ancestor.condition.message.startswith(message)


@pytest.mark.parametrize(
    ("weights", "canary", "percent", "expected"),
    [
        ([90, 10], 1, 0, [10000, 0]),
        ([90, 10], 1, 10, [9000, 1000]),
        ([90, 10], 1, 33.33, [6667, 3333]),
        ([90, 10], 1, 100, [0, 10000]),
        ([0, 0, 0], 0, 50, [5000, 2500, 2500]),  # the others all 0: they share the rest equally
        ([1, 1, 1], 2, 50, [2500, 2500, 5000]),
        ([3, 0, 1], 1, 20, [6000, 2000, 2000]),
        ([5], 0, 20, [2000]),  # the canary alone: all of the rule
    ],
)
def test_rollout_weights(weights: list[int], canary: int, percent: float, expected: list[int]) -> None:
    assert rollout_weights(weights, canary, percent) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 1_000_000), min_size=1, max_size=8), st.data(), st.integers(0, 10_000))
def test_rollout_weights_give_the_canary_exactly_its_share(
    weights: list[int], data: Any, hundredths: int
) -> None:
    canary = data.draw(st.integers(0, len(weights) - 1))
    out = rollout_weights(weights, canary, hundredths / 100)
    assert out[canary] == hundredths and all(0 <= w <= 10_000 for w in out)
    assert sum(out) == 10_000 or len(weights) == 1
    others = [j for j in range(len(weights)) if j != canary]
    for a in others:  # the rest keeps the route's proportions, to one unit
        for b in others:
            if weights[a] > weights[b]:
                assert out[a] >= out[b]


def test_the_loader_checks_the_canary_index() -> None:
    good = http_document(http_rule(backends=[("v1", 90), ("v2", 10)], canary=1), upstreams=UPSTREAMS)
    assert load(good).http_rules[0].canary == 1
    bad = http_document(http_rule(backends=[("v1", 90), ("v2", 10)], canary=2), upstreams=UPSTREAMS)
    assert errors_of(bad) == ["httpRules[0].canary"]
    assert errors_of(http_document(http_rule(backends=[("v1", 1)], canary="0"), upstreams=UPSTREAMS)) == [
        "httpRules[0].canary"
    ]


@pytest.mark.parametrize(
    ("index", "filters", "canary", "expected"),
    [
        (0, False, None, "rule-3"),
        (1, True, None, "rule-3.1"),
        (1, False, 1, "rule-3.canary"),
        (0, False, 1, "rule-3.stable"),
        (2, True, 1, "rule-3.2.stable"),
        (2, True, 2, "rule-3.2.canary"),
    ],
)
def test_track_labels(index: int, filters: bool, canary: int | None, expected: str) -> None:
    own = Backend("v1", 1, request_headers=_a_filter()) if filters else Backend("v1", 1)
    assert backend_track("rule-3", index, own, canary) == expected


def _a_filter() -> Any:
    rule = http_rule(backends=[("v1", 1)], filters={"requestHeaders": {"set": {"X-A": "1"}}})
    return load(http_document(rule, upstreams=UPSTREAMS)).http_rules[0].request_headers


def test_the_proxy_labels_the_canary_track() -> None:
    doc = http_document(http_rule(backends=[("v1", 0), ("v2", 10000)], canary=1), upstreams=UPSTREAMS)
    decision = decide(RouteTable.build([load(doc)]), view(host="gw.test"), 0.5, port=80)
    assert decision is not None and (decision.upstream, decision.track) == ("v2", "rule-0.canary")


def page(canary_errors: int, requests: int) -> str:
    """Two rules' tracks of one route, as a proxy's /metrics shows them."""
    lines = []
    for rule in (0, 1):
        lines += [
            f'graylane_requests_total{{route="shop/web",track="rule-{rule}.stable",code="200"}} {requests}',
            f'graylane_requests_total{{route="shop/web",track="rule-{rule}.canary",code="200"}} {requests - canary_errors}',
            f'graylane_requests_total{{route="shop/web",track="rule-{rule}.canary",code="503"}} {canary_errors}',
            f'graylane_requests_total{{route="shop/web",track="rule-{rule}",code="200"}} 1000',
        ]
    return "\n".join(lines) + "\n"


def test_the_analysis_sums_a_routes_rule_tracks() -> None:
    window = MetricWindow(60.0)
    window.add(now=0.0, snapshots={"p": parse_snapshot(page(0, 0))})
    window.add(now=10.0, snapshots={"p": parse_snapshot(page(5, 50))})
    figures = window.figures("shop/web", now=10.0, window_seconds=30.0)
    assert figures is not None
    assert (figures.canary.requests, figures.canary.errors, figures.stable.requests) == (100, 10, 100)
    assert figures.canary.error_rate == 10.0


def test_one_rollout_per_route() -> None:
    """Two rollouts on two rules of one route would read the same traffic: the younger is Conflicted."""
    old = traffic_policy("old", "shop/main", created="2026-01-01T00:00:00Z", rollout=ROLLOUT)
    new = traffic_policy("new", "shop/other", rollout=ROLLOUT)
    plan = planned(gateway("gw"), shop(), old, new)
    ((_, first),) = [(a.ref, a.condition) for a in plan.policies[(NS, "old")]]
    ((_, second),) = [(a.ref, a.condition) for a in plan.policies[(NS, "new")]]
    assert first.reason == "Accepted" and second.reason == "Conflicted"
    assert second.message == f"TrafficPolicy {NS}/old rolls out a backendRef of HTTPRoute shop and is older"
    (doc,) = plan.gateways[(NS, "gw")].documents.values()
    assert "canary" in doc["httpRules"][0] and "canary" not in doc["httpRules"][1]
