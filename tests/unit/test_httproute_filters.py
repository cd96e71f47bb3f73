# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""Gateway API extended filters: the document's ``responseHeaders``, ``rewrite``, ``mirrors``, ``timeouts``
and backend ``filters`` (loader, field paths), the path replacement and the HTTPRoute -> document translation.

Table rows are named after the conformance tests whose expectations they copy.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.config.document import load_route_document, seal
from graylane.config.model import HeaderFilter, MirrorTo, PathMatch, Rewrite, RuleTimeouts
from graylane.gateway.filters import filter_problem, parse_duration, rule_filters
from graylane.gateway.objects import Filter
from graylane.gateway.refs import Resolved
from graylane.gateway.routes import parse_http_route
from graylane.routing.filters import replace_path
from tests.unit.docs import errors_of, http_document, http_rule, load
from tests.unit.gwworld import NS, backend, gateway, http_route, planned


def test_the_extended_filters_load_into_the_model() -> None:
    rule = http_rule(
        backends=[("v1", 1)],
        filters={
            "responseHeaders": {"set": {"X-S": "s"}, "add": {"X-A": "a"}, "remove": ["X-R"]},
            "rewrite": {
                "hostname": "one.example.org",
                "path": {"type": "ReplacePrefixMatch", "value": "/one/"},
            },
            "mirrors": [{"upstream": "v2", "percent": 20}],
        },
        timeouts={"request": 0.5, "backendRequest": 0.25},
    )
    rule["backends"][0]["filters"] = {"requestHeaders": {"add": {"X-B": "b"}}}
    (parsed,) = load(http_document(rule)).http_rules
    assert parsed.response_headers == HeaderFilter({"X-S": "s"}, {"X-A": "a"}, ("X-R",))
    assert parsed.rewrite == Rewrite("one.example.org", PathMatch("PathPrefix", "/one"))
    assert parsed.mirrors == (MirrorTo("v2", 20),)
    assert parsed.timeouts == RuleTimeouts(0.5, 0.25)
    assert parsed.backends[0].request_headers == HeaderFilter({}, {"X-B": "b"}, ())
    assert parsed.backends[0].response_headers is None


BAD_RULES = [
    (http_rule(filters={"responseHeaders": {"set": {"Content-Length": "1"}}}),
     "httpRules[0].filters.responseHeaders.set.Content-Length"),
    (http_rule(filters={"responseHeaders": {"add": {"X-A": "a\r\nX-B: b"}}}),
     "httpRules[0].filters.responseHeaders.add.X-A"),
    (http_rule(filters={"rewrite": {"hostname": "Bad Host"}}), "httpRules[0].filters.rewrite.hostname"),
    (http_rule(filters={"rewrite": {"path": {"type": "Replace", "value": "/"}}}),
     "httpRules[0].filters.rewrite.path.type"),
    (http_rule(filters={"rewrite": {"path": {"type": "ReplaceFullPath", "value": "/a/../b"}}}),
     "httpRules[0].filters.rewrite.path.value"),
    (http_rule(filters={"rewrite": {"port": 1}}), "httpRules[0].filters.rewrite.port"),
    (http_rule(filters={"rewrite": {}, "redirect": {}}, backends=[]), "httpRules[0].filters.rewrite"),
    (http_rule(filters={"mirrors": [{"upstream": "nope"}]}), "httpRules[0].filters.mirrors[0].upstream"),
    (http_rule(filters={"mirrors": [{"upstream": "v2", "percent": 101}]}),
     "httpRules[0].filters.mirrors[0].percent"),
    (http_rule(filters={"mirrors": [{"upstream": "v2"}] * 17}), "httpRules[0].filters.mirrors"),
    (http_rule(filters={"mirrors": [{"upstream": "v2", "percent": "all"}]}), "httpRules[0].filters.mirrors[0].percent"),
    (http_rule(timeouts={"request": -1}), "httpRules[0].timeouts.request"),
    (http_rule(timeouts={"request": 1, "backendRequest": 2}), "httpRules[0].timeouts.backendRequest"),
    (http_rule(timeouts={"idle": 1}), "httpRules[0].timeouts.idle"),
    (http_rule(backends=[("v1", 1)]) | {"backends": [{"upstream": "v1", "weight": 1,
                                                      "filters": {"redirect": {}}}]},
     "httpRules[0].backends[0].filters.redirect"),
    (http_rule(backends=[("v1", 1)]) | {"backends": [{"upstream": "v1", "weight": 1,
                                                      "filters": {"responseHeaders": {"remove": ["Connection"]}}}]},
     "httpRules[0].backends[0].filters.responseHeaders.remove[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "where"), BAD_RULES, ids=[w for _, w in BAD_RULES])
def test_bad_filters_are_refused_with_their_path(rule: dict[str, Any], where: str) -> None:
    assert where in errors_of(http_document(rule))


PATHS = [  # the table of the API's ReplacePrefixMatch, HTTPRouteRewritePath, HTTPRouteRedirectPath
    ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
    ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
    ("/foo", "/foo", "/xyz", "/xyz"),
    ("/foo/", "/foo", "/xyz", "/xyz/"),
    ("/foo/bar", "/foo", "/", "/bar"),
    ("/foo/", "/foo", "/", "/"),
    ("/foo", "/foo", "/", "/"),
    ("/prefix/one/two", "/prefix/one", "/one", "/one/two"),
    ("/strip-prefix/three", "/strip-prefix", "/", "/three"),
    ("/strip-prefix", "/strip-prefix", "/", "/"),
    ("/x", "/", "/bar", "/bar/x"),
    ("/", "/", "/bar", "/bar"),
]


@pytest.mark.parametrize(("path", "matched", "value", "expected"), PATHS)
def test_replace_prefix_match(path: str, matched: str, value: str, expected: str) -> None:
    assert replace_path(PathMatch("PathPrefix", value.rstrip("/") or "/"), matched, path) == expected


def test_replace_full_path_and_none() -> None:
    assert replace_path(PathMatch("Exact", "/one"), "/full/one", "/full/one/two") == "/one"
    assert replace_path(None, "/a", "/a/b") == "/a/b"


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("1s", 1.0), ("0s", 0.0), ("1h2m3s", 3723.0),
                                               ("1d", None), ("", None), ("1.5s", None), ("s", None)])  # fmt: skip
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def f(kind: str, **spec: Any) -> Filter:
    return Filter(kind, spec)


TRANSLATIONS = [
    ("HTTPRouteResponseHeaderModifier",
     [f("ResponseHeaderModifier", set=[{"name": "X-Header-Set", "value": "set-overwrites-values"}],
        add=[{"name": "X-Header-Add", "value": "add-appends-values"}], remove=["X-Header-Remove"])],
     {"responseHeaders": {"set": {"X-Header-Set": "set-overwrites-values"},
                          "add": {"X-Header-Add": "add-appends-values"}, "remove": ["X-Header-Remove"]}}),
    ("HTTPRouteRewriteHost", [f("URLRewrite", hostname="one.example.org")],
     {"rewrite": {"hostname": "one.example.org"}}),
    ("HTTPRouteRewritePath", [f("URLRewrite", path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"})],
     {"rewrite": {"path": {"type": "ReplacePrefixMatch", "value": "/one"}}}),
    ("an empty ReplacePrefixMatch acts as /",
     [f("URLRewrite", path={"type": "ReplacePrefixMatch", "replacePrefixMatch": ""})],
     {"rewrite": {"path": {"type": "ReplacePrefixMatch", "value": "/"}}}),
    ("HTTPRouteRequestMirror", [f("RequestMirror", backendRef={"name": "v2"})],
     {"mirrors": [{"upstream": "v2.infra.8080", "percent": 100.0}]}),
    ("HTTPRouteRequestPercentageMirror", [f("RequestMirror", backendRef={"name": "v2"}, percent=20)],
     {"mirrors": [{"upstream": "v2.infra.8080", "percent": 20.0}]}),
    ("a fraction", [f("RequestMirror", backendRef={"name": "v2"}, fraction={"numerator": 1, "denominator": 3})],
     {"mirrors": [{"upstream": "v2.infra.8080", "percent": 33.33}]}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "filters", "expected"), TRANSLATIONS, ids=[c[0] for c in TRANSLATIONS])
def test_filters_translate_to_the_document(
    case: str, filters: list[Filter], expected: dict[str, Any]
) -> None:
    mirrors = [Resolved("http://v2.infra.svc:8080", "v2.infra.8080")] * 2
    assert rule_filters(filters, mirrors) == expected


def test_an_unresolved_mirror_is_left_out() -> None:
    filters = [f("RequestMirror", backendRef={"name": "gone"})]
    assert rule_filters(filters, [Resolved(None, None, "BackendNotFound", "gone")]) == {}


def test_a_conformance_route_compiles_to_a_document_the_proxy_loads() -> None:
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "infra-backend-v2", "port": 8080},
                                                          "percent": 20}}  # fmt: skip
    headers = {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {"add": [{"name": "X-B", "value": "1"}]},
    }
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/prefix/one"}}],
              "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                                                         "replacePrefixMatch": "/one"}}}, mirror],
              "backendRefs": [{**backend("infra-backend-v1"), "filters": [headers]}],
              "timeouts": {"request": "500ms", "backendRequest": "0s"}}]  # fmt: skip
    route = http_route("r", rules=rules)
    out = planned(route, gateway("same-namespace"))
    (doc,) = [d for g in out.gateways.values() for d in g.documents.values() if d["route"]["name"] == "r"]
    rule: Any = doc["httpRules"][0]  # type: ignore[index]
    assert rule["filters"]["mirrors"] == [{"upstream": "infra-backend-v2.infra.8080", "percent": 20.0}]
    assert rule["timeouts"] == {"request": 0.5, "backendRequest": 0.0}
    assert rule["backends"][0]["filters"] == {"requestHeaders": {"add": {"X-B": "1"}}}
    assert "infra-backend-v2.infra.8080" in doc["upstreams"]
    (parsed,) = load_route_document(seal(doc)).http_rules
    assert parsed.rewrite == Rewrite(None, PathMatch("PathPrefix", "/one"))


def test_a_missing_mirror_backend_is_a_resolved_refs_problem() -> None:
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "gone", "port": 8080}}}
    route = http_route("r", rules=[{"filters": [mirror], "backendRefs": [backend("infra-backend-v1")]}])
    (status,) = planned(route, gateway("same-namespace")).routes[(NS, "r")]
    accepted, refs = status.conditions
    assert accepted.status and not refs.status and refs.reason == "BackendNotFound"
    assert refs.message.startswith("spec.rules[0].filters[0].requestMirror.backendRef")


def test_filter_problems_name_the_field() -> None:
    route = parse_http_route(http_route("r", rules=[{"filters": [{"type": "CORS", "cors": {}}]}]))
    assert (
        filter_problem(route.rules[0], "spec.rules[0]")
        == "spec.rules[0].filters[0].type: CORS is not supported by Graylane yet"
    )
