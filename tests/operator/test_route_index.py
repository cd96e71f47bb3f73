"""The route controller's index: which routes a change affects, which Upstreams a compile reads (pure)."""

from __future__ import annotations

from typing import Any

from graylane.operator.routes.index import RouteIndex, compact, same


def upstream(name: str, ns: str = "shop", **labels: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns, "labels": labels, "resourceVersion": "1", "generation": 1}
    return compact({"metadata": meta, "spec": {"service": {"name": name, "port": 80}}}, "Upstream")


def route(
    name: str, ns: str = "shop", *, created: str = "2026-01-01T00:00:00Z", **spec: Any
) -> dict[str, Any]:
    meta = {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "generation": 1,
    }
    body = {"hosts": [f"{name}.example.com"], "stable": f"{name}-v1", "canary": f"{name}-v2"} | spec
    return compact({"metadata": meta, "spec": body}, "CanaryRoute")


def indexed(*routes: dict[str, Any], upstreams: tuple[dict[str, Any], ...] = ()) -> RouteIndex:
    index = RouteIndex()
    for obj in upstreams:
        index.upstream_changed((obj["metadata"]["namespace"], obj["metadata"]["name"]), None, obj)
    for obj in routes:
        index.route_changed((obj["metadata"]["namespace"], obj["metadata"]["name"]), None, obj)
    return index


SELECTING = {"versionRouting": {"header": "X-Version", "upstreamSelector": {"matchLabels": {"app": "a"}}}}


def test_an_upstream_change_affects_the_routes_naming_or_selecting_it_and_no_other() -> None:
    routes = [route("a", **SELECTING), route("b", canary="shared"), route("c", canary="shared"), route("d")]
    index = indexed(*routes)
    assert index.upstream_changed(("shop", "shared"), None, upstream("shared")) == {
        ("shop", "b"),
        ("shop", "c"),
    }
    assert index.upstream_changed(("shop", "a-v3"), None, upstream("a-v3", app="a")) == {("shop", "a")}
    assert index.upstream_changed(("shop", "d-v1"), None, upstream("d-v1")) == {("shop", "d")}
    assert index.upstream_changed(("other", "shared"), None, upstream("shared", "other")) == set()
    relabelled = upstream("a-v3", app="z")
    assert index.upstream_changed(("shop", "a-v3"), upstream("a-v3", app="a"), relabelled) == {
        ("shop", "a")
    }, "a label taken away: the route that selected it compiles again"


def test_an_upstream_whose_status_alone_moved_affects_no_route() -> None:
    index = indexed(route("b", canary="shared"))
    before = upstream("shared")
    after = dict(before, status={"target": "http://shared.shop.svc:80"})
    assert index.upstream_changed(("shop", "shared"), before, after) == set()
    assert not same(before, after)


def test_a_selector_without_match_labels_depends_on_the_whole_namespace() -> None:
    expressions = {"upstreamSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}
    index = indexed(route("e", versionRouting={"header": "X-Version", **expressions}), route("f"))
    assert index.upstream_changed(("shop", "anything"), None, upstream("anything")) == {("shop", "e")}


def test_the_upstreams_of_a_compile_are_found_by_name_and_label() -> None:
    ups = (
        upstream("a-v1", app="a"),
        upstream("a-v2", app="a"),
        upstream("a-v3", app="a"),
        upstream("x", app="x"),
    )
    index = indexed(route("a", **SELECTING), upstreams=ups)
    assert set(index.upstreams_for(route("a", **SELECTING))) == {"a-v1", "a-v2", "a-v3"}
    assert set(index.upstreams_for(route("a"))) == {"a-v1", "a-v2"}
    index.upstream_changed(("shop", "a-v3"), ups[2], None)
    assert set(index.upstreams_for(route("a", **SELECTING))) == {"a-v1", "a-v2"}


def test_claims_give_the_rivals_and_a_moved_claim_rechecks_its_neighbours() -> None:
    old = route("old", hosts=["api.example.com"], created="2026-01-01T00:00:00Z")
    young = route("young", hosts=["api.example.com"], created="2026-01-02T00:00:00Z")
    index = indexed(old, young)
    assert {c.name for c in index.rivals(young)} == {"old", "young"}
    moved = route("old", hosts=["elsewhere.example.com"], created="2026-01-01T00:00:00Z")
    assert index.route_changed(("shop", "old"), old, moved) == {("shop", "old"), ("shop", "young")}
    assert {c.name for c in index.rivals(young)} == {"young"}
    assert index.route_changed(("shop", "old"), moved, None) == {("shop", "old")}


def test_a_deleted_route_leaves_nothing_behind() -> None:
    tls = {"tls": {"secretName": "cert"}}
    index = indexed(route("a", **SELECTING, **tls))
    assert index.routes_of_secret(("shop", "cert")) == {("shop", "a")}
    index.route_changed(("shop", "a"), route("a", **SELECTING, **tls), None)
    assert index.depends == {} and index.claims == {}


def test_same_ignores_the_resource_version_only() -> None:
    a = route("a")
    b = compact(dict(a, metadata=dict(a["metadata"], resourceVersion="9")), "CanaryRoute")
    assert same(a, b)
    assert not same(a, route("a", weight=5))
