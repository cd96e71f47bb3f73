"""Gateway API documents in the route table: precedence across routes and rules, weighted picks, listener
ports, redirects. Two cases replay conformance scenarios (HTTPRoutePathMatchOrder, MatchingAcrossRoutes).
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.config.document import RouteConfig, load_route_document, seal
from graylane.routing.decide import RouteTable, decide, explain
from graylane.routing.httprules import redirect_location
from tests.unit.docs import base_document, exact, http_document, http_rule, prefix
from tests.unit.views import view

UPSTREAMS = {name: {"url": f"http://{name}.infra.svc:8080"} for name in ("v1", "v2", "v3")}


def route(name: str, *rules: dict[str, Any], created: str = "2026-01-01T00:00:00Z", **kw: Any) -> RouteConfig:
    ref = {"namespace": "infra", "name": name, "uid": name, "generation": 1, "kind": "HTTPRoute",
           "creationTimestamp": created}  # fmt: skip
    return load_route_document(seal(http_document(*rules, route=ref, upstreams=UPSTREAMS, salt=name, **kw)))


def to(backend: str, *matches: dict[str, Any]) -> dict[str, Any]:
    return http_rule(*matches, backends=[(backend, 1)])


def served(table: RouteTable, path: str, *, host: str = "gw.test", port: int | None = 80, **kw: Any) -> Any:
    v = view(host=host, path=path, **kw)
    entry = table.match(host, path, v, port=port)
    decision = decide(table, v, 0.5, port=port)
    if decision is None or entry is None:
        return None
    return decision.status or entry.route.upstream_of(decision)


PATH_ORDER = RouteTable.build([route(
    "path-matching-order",
    to("v1", exact("/match")), to("v2", exact("/match/exact")), to("v3", exact("/match/exact/one")),
    to("v3", prefix("/match/")), to("v1", prefix("/match/prefix/")), to("v2", prefix("/match/prefix/one")),
)])  # fmt: skip


@pytest.mark.parametrize(
    ("path", "backend"),
    [("/match/exact/one", "v3"), ("/match/exact", "v2"), ("/match", "v1"), ("/match/prefix/one/any", "v2"),
     ("/match/prefix/any", "v1"), ("/match/any", "v3"), ("/matchx", None), ("/match/exact/", "v3")],
)  # fmt: skip
def test_exact_paths_first_then_the_longest_prefix(path: str, backend: str | None) -> None:
    assert served(PATH_ORDER, path) == backend


ACROSS = RouteTable.build([
    route("matching-part1", to("v1", prefix("/"), prefix("/", headers=[{"name": "version", "exact": "one"}])),
          listeners=[{"port": 80, "hosts": ["example.com", "example.net"]}]),
    route("matching-part2",
          to("v2", prefix("/v2"), prefix("/", headers=[{"name": "version", "exact": "two"}])),
          listeners=[{"port": 80, "hosts": ["example.com"]}], created="2026-01-02T00:00:00Z"),
])  # fmt: skip


@pytest.mark.parametrize(
    ("host", "path", "headers", "backend"),
    [("example.com", "/", {}, "v1"), ("example.com", "/example", {}, "v1"),
     ("example.net", "/example", {}, "v1"),
     ("example.com", "/example", {"Version": "one"}, "v1"), ("example.com", "/v2", {}, "v2"),
     ("example.net", "/v2", {}, "v1"), ("example.com", "/v2/example", {}, "v2"),
     ("example.com", "/", {"Version": "two"}, "v2"), ("example.org", "/", {}, None)],
)  # fmt: skip
def test_matching_across_routes(host: str, path: str, headers: dict[str, str], backend: str | None) -> None:
    assert served(ACROSS, path, host=host, headers=headers) == backend


def test_method_then_headers_then_query_then_age_then_name_then_rule_order() -> None:
    two_headers = [{"name": "a", "exact": "1"}, {"name": "b", "exact": "1"}]
    query = [{"name": "q", "exact": "1"}]
    table = RouteTable.build([
        route("b-young", to("v3", prefix("/p")), created="2026-02-01T00:00:00Z"),
        route("a-old", to("v1", prefix("/p", query=query)), to("v2", prefix("/p", headers=two_headers)),
              to("v3", prefix("/p", method="POST"))),
        route("a-twin", to("v2", prefix("/p"))),
    ])  # fmt: skip
    everything = {"headers": {"a": "1", "b": "1"}, "query": "q=1"}
    assert served(table, "/p", method="POST", **everything) == "v3", "a method beats two headers"
    assert served(table, "/p", **everything) == "v2", "headers beat a query match"
    assert served(table, "/p", query="q=1") == "v1"
    assert served(table, "/p") == "v2", "same age: a-twin sorts after a-old, whose own rules do not hold"
    young_first = RouteTable.build([route("z", to("v1", prefix("/p")), created="2025-01-01T00:00:00Z"),
                                    route("a", to("v2", prefix("/p")))])  # fmt: skip
    assert served(young_first, "/p") == "v1", "the oldest route wins a tie before its name"
    in_route = RouteTable.build([route("r", to("v2", prefix("/p")), to("v1", prefix("/p")))])
    assert served(in_route, "/p") == "v2", "within a route the first rule wins"


@pytest.mark.parametrize(
    ("backends", "sample", "expected"),
    [([("v1", 70), ("v2", 30), ("v3", 0)], 0.0, ("v1", "backend", 0)),
     ([("v1", 70), ("v2", 30), ("v3", 0)], 0.699, ("v1", "backend", 0)),
     ([("v1", 70), ("v2", 30), ("v3", 0)], 0.7, ("v2", "backend", 0)),
     ([("v1", 70), ("v2", 30), ("v3", 0)], 0.999, ("v2", "backend", 0)),
     ([("v1", 1), (None, 1)], 0.25, ("v1", "backend", 0)),
     ([("v1", 1), (None, 1)], 0.75, ("", "invalid-backend", 500)),
     ([("v1", 0), (None, 0)], 0.5, ("", "no-backend", 500)),
     ([], 0.5, ("", "no-backend", 500)),
     ([(None, 3)], 0.1, ("", "invalid-backend", 500))],
)  # fmt: skip
def test_weighted_picks(
    backends: list[tuple[str | None, int]], sample: float, expected: tuple[Any, ...]
) -> None:
    table = RouteTable.build([route("w", http_rule(backends=backends))])
    decision = decide(table, view(host="gw.test", path="/"), sample, port=80)
    assert decision is not None and (decision.upstream, decision.reason, decision.status) == expected
    assert decision.track == "rule-0"


def test_weights_split_in_proportion() -> None:
    table = RouteTable.build([route("w", http_rule(backends=[("v1", 3), ("v2", 1)]))])
    picks = [decide(table, view(host="h", path="/"), i / 1000, port=80).upstream for i in range(1000)]  # type: ignore[union-attr]
    assert picks.count("v1") == 750 and picks.count("v2") == 250


def test_listener_ports_and_hosts_limit_where_a_document_is_served() -> None:
    canary = load_route_document(seal(base_document(hosts=[])))
    listeners = [{"port": 80, "hosts": ["*.wild.io"]}, {"port": 443, "hosts": ["secure.test"]}]
    gateway = route("gw", to("v1", prefix("/")), listeners=listeners)
    table = RouteTable.build([gateway, canary])
    assert served(table, "/", host="a.b.wild.io") == "v1"
    assert served(table, "/", host="wild.io") == "checkout-v1", "*. is not the apex: the port-less route"
    assert served(table, "/", host="secure.test", port=443) == "v1"
    assert served(table, "/", host="a.wild.io", port=443) == "checkout-v1"
    assert served(table, "/", host="a.wild.io", port=8080) == "checkout-v1", "unknown port: port-less routes"
    assert served(table, "/", host="a.wild.io", port=None) == "checkout-v1"
    assert table.lookup("a.wild.io", "/", port=80).key == "infra/gw"  # type: ignore[union-attr]


def test_conditions_need_a_request_view() -> None:
    table = RouteTable.build([route("h", to("v1", prefix("/", headers=[{"name": "x", "exact": "1"}])))])
    assert table.lookup("h.test", "/", port=80) is None
    assert table.match("h.test", "/", view(host="h.test", headers={"X": "1"}), port=80) is not None


REDIRECT_RULE = {"backends": [], "matches": [prefix("/old")]}


@pytest.mark.parametrize(
    ("spec", "scheme", "port", "path", "location"),
    [({}, "http", 80, "/old/x", "http://gw.test/old/x"),
     ({}, "http", 8080, "/old/x", "http://gw.test:8080/old/x"),
     ({"hostname": "example.org"}, "http", 80, "/old", "http://example.org/old"),
     ({"scheme": "https"}, "http", 8080, "/old", "https://gw.test/old"),
     ({"scheme": "https", "port": 8443}, "http", 80, "/old", "https://gw.test:8443/old"),
     ({"port": 443}, "http", 80, "/old", "http://gw.test:443/old"),
     ({"path": {"type": "ReplaceFullPath", "value": "/new"}}, "http", 80, "/old/x", "http://gw.test/new"),
     ({"path": {"type": "ReplacePrefixMatch", "value": "/new"}}, "http", 80, "/old/x", "http://gw.test/new/x"),
     ({"path": {"type": "ReplacePrefixMatch", "value": "/new"}}, "http", 80, "/old", "http://gw.test/new"),
     ({"path": {"type": "ReplacePrefixMatch", "value": "/"}}, "http", 80, "/old/x", "http://gw.test/x"),
     ({"path": {"type": "ReplacePrefixMatch", "value": "/"}}, "http", 80, "/old", "http://gw.test/")],
)  # fmt: skip
def test_redirect_location(spec: dict[str, Any], scheme: str, port: int, path: str, location: str) -> None:
    table = RouteTable.build([route("r", {**REDIRECT_RULE, "filters": {"redirect": spec}})])
    decision = decide(table, view(host="gw.test", path=path), 0.5, port=80)
    assert decision is not None and decision.status == 302 and decision.reason == "redirect"
    assert (
        redirect_location(decision, scheme=scheme, host="gw.test", port=port, path=path, query="") == location
    )
    with_query = redirect_location(decision, scheme=scheme, host="gw.test", port=port, path=path, query="a=1")
    assert with_query == location + "?a=1"


def test_explain_names_the_rule_and_the_pick() -> None:
    table = RouteTable.build([route("e", http_rule(exact("/x"), backends=[("v1", 1), (None, 1)]))])
    out = explain(table, view(host="gw.test", path="/x"), 0.9, port=80)
    assert out == {"route": "infra/e", "kind": "HTTPRoute", "generation": 1, "checksum": out["checksum"],
                   "match": {"type": "Exact", "value": "/x"}, "track": "rule-0", "upstream": None,
                   "upstreamURL": None, "reason": "invalid-backend", "status": 500}  # fmt: skip
    assert (
        explain(table, view(host="gw.test", path="/x"), 0.1, port=80)["upstreamURL"]
        == "http://v1.infra.svc:8080"
    )


ISOLATION_LISTENERS = {"empty": None, "wildcard": "*.example.com", "wildcard-foo": "*.foo.example.com",
                       "abc": "abc.foo.example.com"}  # fmt: skip
# GatewayHTTPListenerIsolation: (host, path) -> served; each route is attached to one listener of port 80
ISOLATION = [
    ("bar.com", "/empty", "v1"), ("bar.com", "/wildcard", None), ("bar.com", "/wildcard-foo", None),
    ("bar.com", "/abc", None),
    ("bar.example.com", "/empty", None), ("bar.example.com", "/wildcard", "v1"),
    ("bar.example.com", "/wildcard-foo", None), ("bar.example.com", "/abc", None),
    ("bar.foo.example.com", "/empty", None), ("bar.foo.example.com", "/wildcard", None),
    ("bar.foo.example.com", "/wildcard-foo", "v1"), ("bar.foo.example.com", "/abc", None),
    ("abc.foo.example.com", "/empty", None), ("abc.foo.example.com", "/wildcard", None),
    ("abc.foo.example.com", "/wildcard-foo", None), ("abc.foo.example.com", "/abc", "v1"),
]  # fmt: skip


def isolation_table() -> RouteTable:
    def attached(name: str, hostname: str | None) -> RouteConfig:
        listener = {
            "port": 80,
            "hosts": [hostname] if hostname else [],
            **({"hostname": hostname} if hostname else {}),
        }
        return route(name, to("v1", prefix(f"/{name}")), listeners=[listener])

    return RouteTable.build([attached(name, hostname) for name, hostname in ISOLATION_LISTENERS.items()])


@pytest.mark.parametrize(("host", "path", "expected"), ISOLATION)
def test_a_request_only_sees_the_routes_of_its_most_specific_listener(
    host: str, path: str, expected: str | None
) -> None:
    assert served(isolation_table(), path, host=host) == expected


def test_a_listener_goes_with_its_last_route() -> None:
    table = isolation_table()
    table.remove("infra/abc")
    assert served(table, "/wildcard-foo", host="abc.foo.example.com") == "v1", "its wildcard listener now"
    table.remove("infra/wildcard-foo")
    table.remove("infra/wildcard")
    assert served(table, "/empty", host="abc.foo.example.com") == "v1", "only the listener without hostname"
    table.remove("infra/empty")
    assert table.ports == ()


def gateway_listeners(*slots: tuple[int, str | None]) -> RouteConfig:
    """The operator's listeners document of a Gateway (``route.kind: Gateway``, no rules)."""
    ref = {"namespace": "infra", "name": "gw", "uid": "uid-gw", "generation": 1, "kind": "Gateway"}
    listeners = [{"port": port, "hosts": [], **({"hostname": h} if h else {})} for port, h in slots]
    return load_route_document(seal({"schemaVersion": 2, "route": ref, "hosts": [], "listeners": listeners,
                                     "upstreams": {}, "httpRules": [], "salt": "infra/gw"}))  # fmt: skip


def test_a_listener_without_routes_is_still_the_one_a_request_belongs_to() -> None:
    """Without the Gateway's listeners document, ``abc.foo.example.com`` with no route attached would fall
    to the routes of ``*.foo.example.com``; with it, that listener is known and answers 404."""
    table = isolation_table()
    table.remove("infra/abc")
    table.put(table.compile(gateway_listeners(*((80, h) for h in ISOLATION_LISTENERS.values()))))
    assert served(table, "/wildcard-foo", host="abc.foo.example.com") is None
    assert served(table, "/wildcard-foo", host="bar.foo.example.com") == "v1", "the other listeners as before"
    assert served(table, "/empty", host="bar.com") == "v1"
    table.remove("gateway:infra/gw")  # the Gateway's own key: a route named like the Gateway is another
    assert served(table, "/wildcard-foo", host="abc.foo.example.com") == "v1"


def test_documents_without_listener_hostnames_share_the_port() -> None:
    """Documents of an operator before listener isolation: one entry per port, no ``hostname``."""
    table = RouteTable.build([
        route("a", to("v1", prefix("/a")), listeners=[{"port": 80, "hosts": ["*.example.com"]}]),
        route("b", to("v2", prefix("/b")), listeners=[{"port": 80, "hosts": []}]),
    ])  # fmt: skip
    assert served(table, "/b", host="x.example.com") == "v2", "as before: the any-host route is the fallback"
