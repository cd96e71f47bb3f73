"""The route table's incremental index against the plain definition of a lookup, under puts and removes.

The definition (docs/gateway-api.md, docs/route-config.md): on a listener port with documents of its own,
those documents (with their listener's hosts) and the port-less ones; elsewhere the port-less ones. Then
routes naming the exact host, then wildcard hosts (longest suffix first), then routes without hosts; within
each tier the entries in rank order (Exact, the longest prefix, regular expressions, then methods, headers,
query, age, name, rule order), the first whose conditions hold. The table keeps that in dicts changed one
route at a time; whatever sequence of puts and removes led to it, every lookup must equal the definition
applied to the routes present -- CanaryRoutes and Gateway API documents, listener ports included.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graylane.config.document import RouteConfig, load_route_document, seal
from graylane.routing.table import CompiledRoute, Entry, RouteTable, route_entries
from tests.unit.docs import base_document, exact, http_document, http_rule, prefix
from tests.unit.views import view

HOSTS = ["a.test", "b.test", "*.test", "*.x.b.test", "x.b.test"]
PREFIXES = ["/", "/api", "/api/v1", "/apix", "/b", "/api/v1/deep/er"]
PATHS = ["/", "/api", "/api/", "/api/v1", "/api/v1/x", "/apix", "/apix/y", "/b/c", "/api/v1/deep/er/z", "*"]
REQUEST_HOSTS = ["a.test", "x.b.test", "y.x.b.test", "other.example"]
NAMES = [f"r{i}" for i in range(8)]


def canary(name: str, hosts: list[str], path: str) -> RouteConfig:
    ref = {"namespace": "ns", "name": name, "uid": name, "generation": 1}
    return load_route_document(seal(base_document(route=ref, hosts=hosts, pathPrefix=path, salt=name)))


def gateway(name: str, hosts: list[str], matches: list[dict[str, Any]], port: int) -> RouteConfig:
    ref = {"namespace": "ns", "name": name, "uid": name, "generation": 1, "kind": "HTTPRoute",
           "creationTimestamp": f"2026-01-0{1 + int(name[1:]) % 3}T00:00:00Z"}  # fmt: skip
    listeners = [{"port": port, "hosts": hosts}]
    doc = http_document(http_rule(*matches), route=ref, hosts=[], listeners=listeners, salt=name)
    return load_route_document(seal(doc))


def reference(routes: dict[str, CompiledRoute], host: str, path: str, port: int | None, v: Any) -> Any:
    """Main's linear definition: every candidate entry in tier and rank order, the first that accepts."""
    portless = [(e, r.config.hosts) for r in routes.values() if not r.config.listeners for e in entries(r)]
    own = [(e, listener.hosts) for r in routes.values() for listener in r.config.listeners
           if listener.port == port for e in entries(r)]  # fmt: skip
    pairs = own + portless if own else portless
    tiers = [[e for e, hosts in pairs if host in hosts]]
    tiers += [[e for e, hosts in pairs if "*" + host[i:] in hosts] for i, ch in enumerate(host) if ch == "."]
    tiers.append([e for e, hosts in pairs if not hosts])
    for tier in tiers:
        for entry in sorted(tier, key=lambda e: e.rank):
            if entry.accepts(path, v):
                return entry.rank
    return None


def entries(route: CompiledRoute) -> tuple[Entry, ...]:
    return route_entries(route, countries=None)


MATCH = st.one_of(
    st.sampled_from(PREFIXES).map(prefix),
    st.sampled_from(PATHS[:6]).map(exact),
    st.sampled_from(PREFIXES).map(lambda p: prefix(p, headers=[{"name": "x", "exact": "1"}])),
    st.just({"path": {"type": "RegularExpression", "value": "/api/.*"}}),
)
HOST_LIST = st.lists(st.sampled_from(HOSTS), max_size=2, unique=True)
CANARY = st.tuples(st.just("canary"), st.sampled_from(NAMES), HOST_LIST, st.sampled_from(PREFIXES))
GATEWAY = st.tuples(st.just("gateway"), st.sampled_from(NAMES), HOST_LIST,
                    st.lists(MATCH, min_size=1, max_size=3), st.sampled_from([80, 81]))  # fmt: skip
STEPS = st.lists(st.one_of(CANARY, GATEWAY, st.sampled_from(NAMES)), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_lookup_equals_the_definition_after_any_puts_and_removes(steps: list[Any]) -> None:
    table = RouteTable()
    present: dict[str, CompiledRoute] = {}
    for step in steps:
        if isinstance(step, str):  # remove
            assert (table.remove(f"ns/{step}") is not None) == (f"ns/{step}" in present)
            present.pop(f"ns/{step}", None)
        else:
            config = canary(*step[1:]) if step[0] == "canary" else gateway(*step[1:])
            route = table.compile(config)
            table.put(route)
            present[route.key] = route
        for host in REQUEST_HOSTS:
            for path in PATHS:
                for port in (None, 80, 81):
                    for v in (None, view(host=host, path=path, headers={"x": "1"})):
                        found = table.match(host, path, v, port=port)
                        got = found.rank if found is not None else None
                        assert got == reference(present, host, path, port, v), (host, path, port)
    assert len(table) == len(present)
    assert {r.key for r in table.routes} == set(present)
    assert set(table.ports) == {lt.port for r in present.values() for lt in r.config.listeners}


def test_shadowed_routes_are_listed_and_the_first_key_wins() -> None:
    table = RouteTable.build([canary("b", ["h.test"], "/api"), canary("a", ["h.test"], "/api/"),
                              canary("c", ["h.test"], "/api")])  # fmt: skip
    found = table.lookup("h.test", "/api/x")
    assert found is not None and found.key == "ns/a"
    assert table.conflicts == (
        "host h.test path /api: ns/b is shadowed by ns/a",
        "host h.test path /api: ns/c is shadowed by ns/b",
    )
    table.remove("ns/a")
    found = table.lookup("h.test", "/api")
    assert found is not None and found.key == "ns/b"
    assert table.conflicts == ("host h.test path /api: ns/c is shadowed by ns/b",)
    table.remove("ns/b")
    assert table.conflicts == ()


def test_replacing_a_route_moves_it_between_hosts_and_leaves_the_others_alone() -> None:
    table = RouteTable.build([canary("one", ["a.test"], "/"), canary("two", ["b.test"], "/")])
    two = table.lookup("b.test", "/")
    table.put(table.compile(canary("one", ["c.test"], "/")))
    assert table.lookup("a.test", "/") is None
    found = table.lookup("c.test", "/x")
    assert found is not None and found.key == "ns/one"
    assert table.lookup("b.test", "/") is two  # the other route's object is untouched


def test_a_listener_port_opens_and_closes_with_its_documents() -> None:
    table = RouteTable.build([canary("plain", ["h.test"], "/")])
    table.put(table.compile(gateway("r1", ["h.test"], [prefix("/gw")], 8080)))
    assert table.ports == (8080,)
    assert (found := table.lookup("h.test", "/gw", port=8080)) is not None and found.key == "ns/r1"
    assert (found := table.lookup("h.test", "/gw", port=80)) is not None and found.key == "ns/plain"
    table.remove("ns/r1")
    assert table.ports == ()
    assert (found := table.lookup("h.test", "/gw", port=8080)) is not None and found.key == "ns/plain"
