# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""TrafficPolicy (GEP-713): parsing with field paths, targets, conflicts, ancestors, what the documents get."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.config.document import load_route_document
from graylane.gateway import conditions as c
from graylane.gateway.plan import plan
from graylane.gateway.policy import parse_traffic_policy
from graylane.gateway.status import policy_status
from tests.unit.gwworld import NS, backend, gateway, http_route, parent, planned, traffic_policy, world

GW = gateway("gw")
GW2 = gateway("gw2")
KEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYB1Tf2ZmYwMnzUJ0kL9bOAfA3m+d\nq5M4p9ZyY7QnQ7V0bH5Zb3qK7f1FqH8J6cJ3m2gQ8cQyJX3k6k3tW1oJ9A==\n-----END PUBLIC KEY-----\n"
JWT = {"issuer": "https://auth.example", "algorithms": ["RS256"], "jwksURL": "https://auth.example/jwks"}


def route(name: str = "shop", *parents: dict[str, Any], **kw: Any) -> dict[str, Any]:
    rules = kw.pop("rules", None) or [
        {
            "name": "main",
            "backendRefs": [backend("infra-backend-v1", weight=90), backend("infra-backend-v2", weight=10)],
        },
        {
            "name": "other",
            "matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
            "backendRefs": [backend("infra-backend-v1")],
        },
    ]
    return http_route(name, *(parents or (parent("gw"),)), rules=rules, **kw)


def problem(**spec: Any) -> str | None:
    return parse_traffic_policy(traffic_policy("p", "shop", **spec)).problem


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"sticky": {"keys": ["header:X-User", "sourceIP"]}}, None),
        ({"sticky": {"keys": ["jwt:sub"]}, "jwt": JWT}, None),
        (
            {
                "pin": [
                    {
                        "name": "office",
                        "match": {"sourceCIDRs": ["203.0.113.0/24"]},
                        "backendRef": "infra-backend-v2",
                    }
                ]
            },
            None,
        ),
        (
            {
                "pin": [
                    {
                        "name": "beta",
                        "match": {"jwtClaims": [{"claim": "role", "in": ["beta"]}]},
                        "backendRef": "infra-backend-v2:8080",
                    }
                ],
                "jwt": JWT,
            },
            None,
        ),
        ({"sticky": {"keys": ["ip"]}}, "spec.sticky.keys[0]: must be jwt:<claim>"),
        ({"sticky": {"keys": ["jwt:sub"]}}, "spec.sticky.keys[0]: a jwt: key needs"),
        (
            {
                "pin": [
                    {
                        "name": "beta",
                        "match": {"jwtClaims": [{"claim": "role", "exact": "b"}]},
                        "backendRef": "x",
                    }
                ]
            },
            "spec.pin[0].match.jwtClaims: claims need spec.jwt",
        ),
        (
            {"pin": [{"name": "o", "match": {"sourceCIDRs": ["203.0.113.7/24"]}, "backendRef": "x"}]},
            "spec.pin[0].match.sourceCIDRs[0]: not a valid CIDR",
        ),
        (
            {"pin": [{"name": "o", "match": {"methods": ["GET"]}, "backendRef": "x"}]},
            "spec.pin[0].match.methods: not a pin condition",
        ),
        (
            {
                "pin": [
                    {
                        "name": "o",
                        "match": {"headers": [{"name": "X", "exact": "1"}]},
                        "backendRef": "Bad_Name",
                    }
                ]
            },
            "spec.pin[0].backendRef: must be a Service name",
        ),
        (
            {
                "pin": [{"name": "o", "match": {"headers": [{"name": "X", "exact": "1"}]}, "backendRef": "a"}]
                * 2
            },
            "spec.pin[1].name: duplicate pin name 'o'",
        ),
        (
            {
                "jwt": {**JWT, "secretRef": {"name": "s", "key": "k"}, "algorithms": ["HS256"]},
                "sticky": {"keys": ["sourceIP"]},
            },
            "spec.jwt.secretRef: not on a TrafficPolicy",
        ),
        (
            {"jwt": {**JWT, "algorithms": ["none"]}, "sticky": {"keys": ["sourceIP"]}},
            "spec.jwt.algorithms[0]: must be one of",
        ),
        ({"jwt": JWT}, "spec: give sticky, pin or rollout"),
        ({"sticky": {"keys": ["sourceIP"]}, "rollout": {}}, "spec.rollout.canary: required field is missing"),
        ({"rollout": {"canary": "infra-backend-v2", "steps": [{"weight": 10}, {"weight": 100}]}}, None),
        (
            {
                "rollout": {
                    "canary": "infra-backend-v2:8080",
                    "steps": [{"weight": 5}],
                    "interval": "1s",
                    "analysis": {"window": "10s", "minRequests": 5},
                }
            },
            None,
        ),
        (
            {"rollout": {"canary": "v2", "steps": [{"mirror": 100}, {"weight": 10}]}},
            "spec.rollout.steps[0]: shadow steps (mirror) are CanaryRoute's",
        ),
        (
            {"rollout": {"canary": "v2", "steps": [{"weight": 50}, {"weight": 10}]}},
            "spec.rollout.steps[1].weight: must not be lower than the step before",
        ),
        (
            {"rollout": {"canary": "v2", "steps": [{"weight": 5}], "analysis": {"maxErrorRate": 200}}},
            "spec.rollout.analysis.maxErrorRate",
        ),
        (
            {"rollout": {"canary": "V2!", "steps": [{"weight": 5}]}},
            "spec.rollout.canary: must be a Service name",
        ),
        (
            {"rollout": {"canary": "v2", "steps": [{"weight": 5}], "mirror": 5}},
            "spec.rollout.mirror: unknown field",
        ),
    ],
)
def test_policy_fields_are_checked_with_their_paths(spec: dict[str, Any], expected: str | None) -> None:
    found = problem(**spec)
    assert (found is None) if expected is None else (found or "").startswith(expected), found


def test_target_refs_must_name_httproutes_once() -> None:
    obj = traffic_policy("p", "shop", "shop")
    assert parse_traffic_policy(obj).problem == "spec.targetRefs[1]: duplicate target"
    obj["spec"]["targetRefs"] = [{"group": "", "kind": "Service", "name": "web"}]
    assert (parse_traffic_policy(obj).problem or "").startswith("spec.targetRefs[0]: must name an HTTPRoute")


def statuses(*objects: dict[str, Any]) -> dict[str, list[tuple[str, str, bool, str]]]:
    """policy name -> [(ancestor kind, ancestor name, Accepted, reason)]."""
    out = planned(*objects).policies
    return {key[1]: [(a.ref["kind"], a.ref["name"], a.condition.status, a.condition.reason) for a in found]
            for key, found in out.items()}  # fmt: skip


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        pytest.param(
            [GW, route(), traffic_policy("p", "shop")],
            {"p": [("Gateway", "gw", True, "Accepted")]},
            id="accepted",
        ),
        pytest.param(
            [GW, GW2, route("shop", parent("gw"), parent("gw2")), traffic_policy("p", "shop/main")],
            {"p": [("Gateway", "gw", True, "Accepted"), ("Gateway", "gw2", True, "Accepted")]},
            id="one-ancestor-per-gateway",
        ),
        pytest.param(
            [GW, traffic_policy("p", "missing")],
            {"p": [("HTTPRoute", "missing", False, "TargetNotFound")]},
            id="route-missing",
        ),
        pytest.param(
            [GW, route(), traffic_policy("p", "shop/nope")],
            {"p": [("HTTPRoute", "shop", False, "TargetNotFound")]},
            id="rule-missing",
        ),
        pytest.param(
            [GW, route("shop", parent("not-ours")), traffic_policy("p", "shop")],
            {"p": [("HTTPRoute", "shop", False, "TargetNotFound")]},
            id="not-attached",
        ),
        pytest.param(
            [
                GW,
                route(),
                traffic_policy("old", "shop", created="2026-01-01T00:00:00Z"),
                traffic_policy("new", "shop"),
            ],
            {"old": [("Gateway", "gw", True, "Accepted")], "new": [("Gateway", "gw", False, "Conflicted")]},
            id="oldest-wins",
        ),
        pytest.param(
            [GW, route(), traffic_policy("b", "shop/main"), traffic_policy("a", "shop/main")],
            {"a": [("Gateway", "gw", True, "Accepted")], "b": [("Gateway", "gw", False, "Conflicted")]},
            id="tie-by-name",
        ),
        pytest.param(
            [GW, route(), traffic_policy("a", "shop"), traffic_policy("b", "shop/main")],
            {"a": [("Gateway", "gw", True, "Accepted")], "b": [("Gateway", "gw", True, "Accepted")]},
            id="rule-and-route-both-apply",
        ),
        pytest.param(
            [
                GW,
                route(),
                traffic_policy("bad", "shop", sticky={"keys": ["nope"]}),
                traffic_policy("good", "shop"),
            ],
            {"bad": [("Gateway", "gw", False, "Invalid")], "good": [("Gateway", "gw", True, "Accepted")]},
            id="invalid-does-not-conflict",
        ),
        pytest.param(
            [
                GW,
                route(),
                traffic_policy(
                    "p",
                    "shop",
                    pin=[
                        {
                            "name": "x",
                            "match": {"headers": [{"name": "X", "exact": "1"}]},
                            "backendRef": "infra-backend-v3",
                        }
                    ],
                ),
            ],
            {"p": [("Gateway", "gw", False, "Invalid")]},
            id="pin-backend-not-in-rule",
        ),
        pytest.param(
            [
                GW,
                route(),
                traffic_policy("a", "shop/main", jwt=JWT, sticky={"keys": ["jwt:sub"]}),
                traffic_policy(
                    "b",
                    "shop/other",
                    created="2026-01-03T00:00:00Z",
                    jwt={**JWT, "issuer": "https://other"},
                    sticky={"keys": ["jwt:sub"]},
                ),
            ],
            {"a": [("Gateway", "gw", True, "Accepted")], "b": [("Gateway", "gw", False, "Conflicted")]},
            id="one-jwt-per-route",
        ),
    ],
)
def test_policy_ancestors(objects: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    assert statuses(*objects) == expected


def test_messages_name_the_winner_and_the_field() -> None:
    out = planned(GW, route(), traffic_policy("old", "shop", created="2026-01-01T00:00:00Z"), traffic_policy("new", "shop"),
                  traffic_policy("bad", "gone", sticky={"keys": ["jwt:sub"]})).policies  # fmt: skip
    assert (
        out[(NS, "new")][0].condition.message
        == f"TrafficPolicy {NS}/old targets the same HTTPRoute shop and is older"
    )
    assert out[(NS, "bad")][0].condition.message.startswith("spec.sticky.keys[0]: a jwt: key needs")


def rules_of(*objects: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    plan = planned(*objects)
    (doc,) = plan.gateways[(NS, "gw")].documents.values()
    load_route_document(doc)
    return doc, doc["httpRules"]


def test_documents_get_the_winning_policies_per_rule() -> None:
    pin = [{"name": "office", "match": {"sourceCIDRs": ["203.0.113.0/24"]}, "backendRef": "infra-backend-v2"}]
    doc, rules = rules_of(GW, route(), traffic_policy("all", "shop", created="2026-01-01T00:00:00Z"),
                          traffic_policy("main", "shop/main", pin=pin, sticky={"keys": ["cookie:s"]}))  # fmt: skip
    assert rules[0]["sticky"] == {"keys": ["cookie:s"]} and rules[0]["pins"] == [
        {"name": "office", "match": pin[0]["match"], "backend": 1}
    ]
    assert rules[1]["sticky"] == {"keys": ["header:X-User"]} and "pins" not in rules[1]
    assert "jwt" not in doc


def test_the_route_jwt_comes_from_its_policy() -> None:
    pin = [
        {
            "name": "beta",
            "match": {"jwtClaims": [{"claim": "role", "exact": "beta"}]},
            "backendRef": "infra-backend-v2",
        }
    ]
    doc, rules = rules_of(GW, route(), traffic_policy("p", "shop/main", jwt=JWT, pin=pin))
    assert doc["jwt"] == JWT and rules[0]["pins"][0]["backend"] == 1 and "pins" not in rules[1]


def test_without_policies_documents_are_unchanged() -> None:
    plain, _ = rules_of(GW, route())
    conflicted, _ = rules_of(GW, route(), traffic_policy("p", "missing"))
    assert plain == conflicted and all("sticky" not in r for r in plain["httpRules"])


def test_policy_status_keeps_other_controllers_and_transition_times() -> None:
    obj = traffic_policy("p", "shop")
    other = {"ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": NS, "name": "x"},
             "controllerName": "example.com/other", "conditions": []}  # fmt: skip
    obj["status"] = {"ancestors": [other]}
    policy = parse_traffic_policy(obj)
    (found,) = planned(GW, route(), obj).policies[(NS, "p")]
    first = policy_status(policy, [found], controller=c.CONTROLLER, now="2026-01-01T00:00:00Z")
    assert first["ancestors"][0] == other
    mine = first["ancestors"][1]
    assert mine["controllerName"] == c.CONTROLLER and mine["ancestorRef"]["name"] == "gw"
    assert mine["conditions"][0] | {"lastTransitionTime": "-"} == {
        "type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "observedGeneration": 1,
        "lastTransitionTime": "-"}  # fmt: skip
    obj["status"] = first
    again = policy_status(
        parse_traffic_policy(obj), [found], controller=c.CONTROLLER, now="2026-02-02T00:00:00Z"
    )
    assert again == first, "unchanged: the same status (no write), the same transition time"


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["targetRefs", "sticky", "jwt", "pin", "keys", "name", "match", "backendRef", "group", "kind"]), inner, max_size=4),
                    max_leaves=12))  # fmt: skip
def test_any_shape_of_policy_never_crashes_the_plan(spec: Any) -> None:
    obj = traffic_policy("p", "shop")
    obj["spec"] = spec
    out = plan(dataclasses.replace(world(GW, route()), policies=(parse_traffic_policy(obj),)))
    assert [a.condition.reason for a in out.policies[(NS, "p")]] in (["Invalid"], ["Accepted"])
