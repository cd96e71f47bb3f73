"""decide(): precedence, the route table lookup, and explain()."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.config.document import RouteConfig, load_route_document, seal
from graylane.routing.decide import RouteTable, decide, decide_route, explain
from graylane.routing.entries import track_decision
from tests.unit.docs import base_document
from tests.unit.views import view

JWT = {"issuer": "https://auth.example.com", "algorithms": ["RS256"], "jwksURL": "https://auth.example.com/k"}


def config(**overrides: Any) -> RouteConfig:
    return load_route_document(seal(base_document(**overrides)))


def versioned(**overrides: Any) -> RouteConfig:
    doc = base_document(**overrides)
    doc["upstreams"]["checkout-v3"] = {"url": "http://127.0.0.1:9003", "metadata": {"version": "v3"}}
    doc["versionRouting"] = {
        "header": "X-Version",
        "metadataKey": "version",
        "candidates": ["checkout-v1", "checkout-v2", "checkout-v3"],
    }
    return load_route_document(seal(doc))


RULES = [
    {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}},
    {"name": "opt-out", "to": "stable", "match": {"headers": [{"name": "X-Canary", "exact": "false"}]}},
    {"name": "beta", "to": "canary", "match": {"jwtClaims": [{"claim": "role", "in": ["beta-tester"]}]}},
    {"name": "office", "to": "canary", "match": {"sourceCIDRs": ["203.0.113.0/24"]}},
    {"name": "everyone-else-stable", "to": "stable", "match": {"methods": ["DELETE"]}},
]


def table_with(**overrides: Any) -> RouteTable:
    return RouteTable.build([config(**overrides)])


# --- precedence -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "track", "upstream", "reason"),
    [
        ({"headers": {"X-Version": "v3", "X-Canary": "true"}}, "canary", "checkout-v3", "version-header"),
        ({"headers": {"X-Version": "v1", "X-Canary": "true"}}, "stable", "checkout-v1", "version-header"),
        ({"headers": {"X-Version": "v9", "X-Canary": "true"}}, "canary", "checkout-v2", "rule:qa"),
        ({"headers": {"X-Canary": "false"}, "client_ip": "203.0.113.9"}, "stable", "checkout-v1",
         "rule:opt-out"),
        ({"claims": {"role": ["beta-tester"]}}, "canary", "checkout-v2", "rule:beta"),
        ({"client_ip": "203.0.113.9"}, "canary", "checkout-v2", "rule:office"),
        ({"method": "DELETE"}, "stable", "checkout-v1", "rule:everyone-else-stable"),
    ],
    ids=["version-beats-rules", "version-to-stable", "unknown-version-falls-through", "rules-in-order",
         "verified-claim", "cidr", "method"],
)  # fmt: skip
def test_precedence(kwargs: dict[str, Any], track: str, upstream: str, reason: str) -> None:
    table = RouteTable.build([versioned(rules=RULES, jwt=JWT)])
    v = view(**kwargs)
    entry = table.match(v.host, v.path, v)
    assert entry is not None and entry.key == "shop/checkout"
    d = decide(table, v, 0.99)
    assert d is not None
    assert (d.track, entry.route.upstream_of(d), d.reason) == (track, upstream, reason)


def test_sticky_split_is_deterministic_per_key_and_uses_threshold() -> None:
    table = table_with(weight=50)
    seen = {decide(table, view(headers={"X-User-Id": f"u{i}"}), 0.0).track for i in range(200)}  # type: ignore[union-attr]
    assert seen == {"stable", "canary"}
    for i in range(50):
        v1 = decide(table, view(headers={"X-User-Id": f"u{i}"}), 0.0)
        v2 = decide(table, view(headers={"X-User-Id": f"u{i}"}), 0.99)
        assert v1 is not None and v2 is not None
        assert v1.track == v2.track and v1.reason == "sticky", "the sample is ignored when a key is present"


def test_random_draw_only_without_key() -> None:
    table = table_with(weight=30, sticky={"keys": ["header:X-User-Id"]})
    low, high = decide(table, view(), 0.2999), decide(table, view(), 0.30)
    assert low is not None and high is not None
    assert (low.track, low.reason) == ("canary", "random")
    assert (high.track, high.reason) == ("stable", "random")


def test_weight_zero_is_stable_without_split() -> None:
    d = decide(table_with(weight=0), view(headers={"X-User-Id": "u1"}), 0.0)
    assert d is not None and (d.track, d.reason) == ("stable", "stable")


def test_weight_hundred_is_all_canary() -> None:
    table = table_with(weight=100)
    tracks = {decide(table, view(headers={"X-User-Id": f"u{i}"}), 0.999).track for i in range(100)}  # type: ignore[union-attr]
    assert tracks == {"canary"}


def test_raising_weight_only_moves_users_to_canary() -> None:
    users = [view(headers={"X-User-Id": f"user-{i}"}) for i in range(500)]
    before = [decide(table_with(weight=10), u, 0.5) for u in users]
    after = [decide(table_with(weight=25), u, 0.5) for u in users]
    for b, a in zip(before, after, strict=True):
        assert b is not None and a is not None
        assert not (b.track == "canary" and a.track == "stable")
    assert sum(a.track == "canary" for a in after if a) > sum(b.track == "canary" for b in before if b)


def test_decisions_are_precomputed() -> None:
    table = table_with()
    d1 = decide(table, view(headers={"X-Canary": "true"}), 0.5)
    d2 = decide(table, view(headers={"X-Canary": "true"}), 0.5)
    assert d1 is d2


def test_fallback_decision() -> None:
    route = table_with().routes[0]
    d = track_decision("stable", "fallback")
    assert (d.track, route.upstream_of(d), d.reason) == ("stable", "checkout-v1", "fallback")
    assert track_decision("stable", "fallback") is d


def test_decisions_are_shared_by_routes() -> None:
    """One decision object per (track, reason) for every route; each route's upstream comes from its track;
    equal ``rules`` blocks share their compiled rules."""
    doc = base_document(route={"namespace": "shop", "name": "b", "uid": "b", "generation": 1},
                        hosts=["b.example.com"], rules=RULES[:1])  # fmt: skip
    doc["upstreams"] = {
        "other-v1": {"url": "http://127.0.0.1:9101"},
        "other-v2": {"url": "http://127.0.0.1:9102"},
    }
    doc["stable"], doc["canary"] = "other-v1", "other-v2"
    table = RouteTable.build(
        [named("a", hosts=["a.example.com"], rules=RULES[:1]), load_route_document(seal(doc))]
    )
    route_a, route_b = table.find("shop/a"), table.find("shop/b")
    assert route_a is not None and route_b is not None
    assert route_a.rules is route_b.rules
    for headers, upstreams in (({"X-Canary": "true"}, ("checkout-v2", "other-v2")), ({}, None)):
        da = decide(table, view(host="a.example.com", headers=headers), 0.0)
        db = decide(table, view(host="b.example.com", headers=headers), 0.0)
        assert da is db and da is not None
        if upstreams is not None:
            assert (route_a.upstream_of(da), route_b.upstream_of(db)) == upstreams


# --- route table lookup ---------------------------------------------------------------------------
def named(name: str, **overrides: Any) -> RouteConfig:
    return config(route={"namespace": "shop", "name": name, "uid": name, "generation": 1}, **overrides)


LOOKUP = RouteTable.build(
    [
        named("root", hosts=["a.example.com"], pathPrefix="/"),
        named("api", hosts=["a.example.com"], pathPrefix="/api"),
        named("api-v2", hosts=["a.example.com"], pathPrefix="/api/v2/"),
        named("wild", hosts=["*.example.com"], pathPrefix="/"),
        named("wild-deep", hosts=["*.b.example.com"], pathPrefix="/"),
        named("any", hosts=[], pathPrefix="/public"),
    ]
)


@pytest.mark.parametrize(
    ("host", "path", "route"),
    [
        ("a.example.com", "/", "shop/root"),
        ("a.example.com", "/api", "shop/api"),
        ("a.example.com", "/api/x", "shop/api"),
        ("a.example.com", "/apix", "shop/root"),
        ("a.example.com", "/api/v2", "shop/api-v2"),
        ("a.example.com", "/api/v2/users", "shop/api-v2"),
        ("c.example.com", "/x", "shop/wild"),
        ("x.b.example.com", "/x", "shop/wild-deep"),
        ("example.com", "/public/x", "shop/any"),
        ("other.test", "/public", "shop/any"),
        ("other.test", "/private", None),
        ("a.example.com", "/public", "shop/root"),
    ],
)
def test_lookup(host: str, path: str, route: str | None) -> None:
    found = LOOKUP.lookup(host, path)
    assert (found.key if found else None) == route


def test_no_route_is_none_and_conflicts_are_reported() -> None:
    table = RouteTable.build([named("one", hosts=["h.test"]), named("two", hosts=["h.test"])])
    assert decide(table, view(host="nope.test"), 0.5) is None
    assert table.lookup("h.test", "/").key == "shop/one"  # type: ignore[union-attr]
    assert table.conflicts == ("host h.test path /: shop/two is shadowed by shop/one",)
    assert table.find("shop/two") is not None


# --- explain --------------------------------------------------------------------------------------
def test_explain_names_rules_tried_and_sticky_bucket() -> None:
    table = RouteTable.build([config(rules=RULES, jwt=JWT)])
    out = explain(table, view(headers={"X-User-Id": "u-1001"}), 0.5)
    assert out["route"] == "shop/checkout" and out["reason"] == "sticky"
    assert [r["name"] for r in out["rules"]] == [r["name"] for r in RULES]
    assert not any(r["matched"] for r in out["rules"])
    assert out["sticky"]["key"] == "header:X-User-Id" and out["sticky"]["threshold"] == 500
    hit = explain(table, view(headers={"X-Canary": "false"}), 0.5)
    assert hit["rules"] == [{"name": "qa", "to": "canary", "matched": False},
                            {"name": "opt-out", "to": "stable", "matched": True}]  # fmt: skip
    assert explain(table, view(host="nope.test"), 0.5)["status"] == 404


def test_decide_route_directly() -> None:
    table = table_with()
    route = table.lookup("checkout.example.com", "/")
    assert route is not None
    assert decide_route(route, view(headers={"x-canary": "true"}), 0.5).reason == "rule:qa"
