"""A TrafficPolicy in the route document: ``sticky`` and ``pins`` on an HTTP rule, ``jwt`` on the route --
the loader's checks, the monotone sticky split over N backends (property-tested), pins before weights."""

from __future__ import annotations

import bisect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.routing.decide import RouteTable, decide, explain
from graylane.routing.sticky import BUCKETS, bucket, monotone_ranges
from tests.unit.docs import errors_of, http_document, http_rule, load
from tests.unit.views import view

UPSTREAMS = {name: {"url": f"http://{name}.shop.svc:8080"} for name in ("v1", "v2", "v3")}
JWT = {"issuer": "https://auth.example", "algorithms": ["RS256"], "jwksURL": "https://auth.example/jwks"}
OFFICE = {"name": "office", "match": {"sourceCIDRs": ["203.0.113.0/24"]}, "backend": 2}
BETA = {"name": "beta", "match": {"jwtClaims": [{"claim": "role", "in": ["beta"]}]}, "backend": 1}


def table(backends: list[tuple[str | None, int]], **rule: Any) -> RouteTable:
    top = {"jwt": rule.pop("jwt")} if "jwt" in rule else {}
    doc = http_document(http_rule(backends=backends, **rule), upstreams=UPSTREAMS, **top)
    return RouteTable.build([load(doc)])


def picked(t: RouteTable, sample: float = 0.5, **kw: Any) -> tuple[str | int, str]:
    decision = decide(t, view(host="gw.test", **kw), sample, port=80)
    assert decision is not None
    return decision.upstream or decision.status, decision.reason


@pytest.mark.parametrize(
    ("rule", "top", "paths"),
    [
        ({"sticky": {"keys": ["header:X-User", "sourceIP"]}}, {}, []),
        ({"pins": [OFFICE]}, {}, []),
        ({"pins": [BETA], "sticky": {"keys": ["jwt:sub"]}}, {"jwt": JWT}, []),
        ({"sticky": {"keys": ["jwt:sub"]}}, {}, ["httpRules[0].sticky.keys[0]"]),
        ({"sticky": {"keys": []}}, {}, ["httpRules[0].sticky.keys"]),
        ({"pins": [BETA]}, {}, ["httpRules[0].pins[0].match.jwtClaims"]),
        ({"pins": [{**OFFICE, "backend": 3}]}, {}, ["httpRules[0].pins[0].backend"]),
        ({"pins": [OFFICE, OFFICE]}, {}, ["httpRules[0].pins[1].name"]),
        ({"pins": [{**OFFICE, "to": "canary"}]}, {}, ["httpRules[0].pins[0].to"]),
        (
            {"pins": [{**OFFICE, "match": {"sourceCIDRs": ["203.0.113.1/24"]}}]},
            {},
            ["httpRules[0].pins[0].match.sourceCIDRs[0]"],
        ),
        ({"sticky": {"keys": ["sourceIP"]}}, {"jwt": {**JWT, "algorithms": ["none"]}}, ["jwt.algorithms[0]"]),
    ],
)
def test_the_loader_checks_policy_blocks(rule: dict[str, Any], top: dict[str, Any], paths: list[str]) -> None:
    doc = http_document(
        http_rule(backends=[("v1", 90), ("v2", 10), ("v3", 0)], **rule), upstreams=UPSTREAMS, **top
    )
    if paths:
        assert errors_of(doc) == paths
    else:
        load(doc)


def owner(weights: list[int], point: int) -> int:
    bounds, owners = monotone_ranges(weights)
    return owners[bisect.bisect_right(bounds, point)]


@pytest.mark.parametrize(
    ("weights", "shares"),
    [([90, 10], [9000, 1000]), ([1, 1, 1], [3333, 3333, 3334]), ([1, 1, 2], [2500, 2500, 5000]),
     ([0, 0, 5], [0, 0, 10000]), ([5], [10000]), ([3, 0, 0], [10000, 0, 0]), ([0, 7, 3], [0, 7000, 3000])],
)  # fmt: skip
def test_the_split_gives_each_backend_its_share_of_buckets(weights: list[int], shares: list[int]) -> None:
    counts = [0] * len(weights)
    for point in range(BUCKETS):
        counts[owner(weights, point)] += 1
    assert counts == shares


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=6), st.integers(1, 1000), st.integers(0, BUCKETS - 1)
)
def test_raising_the_last_weight_only_moves_keys_onto_it(weights: list[int], more: int, point: int) -> None:
    if sum(weights) == 0:
        return
    before = owner(weights, point)
    after = owner([*weights[:-1], weights[-1] + more], point)
    assert after in (before, len(weights) - 1)
    assert owner(list(weights), point) == before, "deterministic"


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(0, 100), st.integers(1, 100))
def test_a_user_never_leaves_the_last_backend_as_it_grows(user: str, last: int, more: int) -> None:
    """The same property through the proxy's decision: a key on v3 stays on v3 when v3's weight grows."""
    keys = {"sticky": {"keys": ["header:X-User"]}}
    first = picked(table([("v1", 50), ("v2", 30), ("v3", last)], **keys), headers={"X-User": user})
    grown = picked(table([("v1", 50), ("v2", 30), ("v3", last + more)], **keys), headers={"X-User": user})
    assert first[1] == grown[1] == "sticky"
    assert grown[0] in (first[0], "v3") and (first[0] != "v3" or grown[0] == "v3")


def test_sticky_is_stable_per_key_and_random_without_one() -> None:
    t = table([("v1", 50), ("v2", 50)], sticky={"keys": ["header:X-User", "cookie:s"]})
    for user in ("alice", "bob", "carol", "dave"):
        picks = {picked(t, sample, headers={"X-User": user}) for sample in (0.0, 0.3, 0.99)}
        expected = "v1" if bucket("shop/web", user) < 5000 else "v2"
        assert picks == {(expected, "sticky")}
    assert picked(t, 0.1) == ("v1", "backend") and picked(t, 0.9) == ("v2", "backend")
    assert picked(t, 0.9, headers={"Cookie": "s=alice"}) == picked(t, 0.1, headers={"X-User": "alice"})


def test_pins_come_before_weights_and_stickiness() -> None:
    t = table(
        [("v1", 100), ("v2", 0), ("v3", 0)],
        pins=[OFFICE, {**BETA, "backend": 1}],
        sticky={"keys": ["sourceIP"]},
        jwt=JWT,
    )
    assert picked(t, client_ip="203.0.113.9") == ("v3", "pin:office")
    assert picked(t, client_ip="198.51.100.1", claims={"role": ["beta"]}) == ("v2", "pin:beta")
    assert picked(t, client_ip="198.51.100.1", claims={"role": "admin"}) == ("v1", "sticky")
    assert picked(t, client_ip="198.51.100.1") == ("v1", "sticky"), (
        "no verified claims: the pin does not apply"
    )


def test_a_pin_to_an_invalid_backend_answers_500_and_all_zero_weights_still_pin() -> None:
    t = table(
        [("v1", 0), (None, 0)],
        pins=[
            {**OFFICE, "backend": 1},
            {
                **OFFICE,
                "name": "other",
                "match": {"headers": [{"name": "X-Pin", "exact": "1"}]},
                "backend": 0,
            },
        ],
    )
    assert picked(t, client_ip="203.0.113.9") == (500, "invalid-backend")
    assert picked(t, headers={"X-Pin": "1"}) == ("v1", "pin:other")
    assert picked(t) == (500, "no-backend")


def test_explain_shows_the_sticky_bucket() -> None:
    t = table([("v1", 50), ("v2", 50)], sticky={"keys": ["header:X-User"]})
    out = explain(t, view(host="gw.test", headers={"X-User": "alice"}), 0.5, port=80)
    assert out["reason"] == "sticky" and out["sticky"] == {
        "key": "header:X-User",
        "bucket": bucket("shop/web", "alice"),
        "bounds": [5000, 10000],
    }
    assert "sticky" not in explain(t, view(host="gw.test"), 0.5, port=80)
