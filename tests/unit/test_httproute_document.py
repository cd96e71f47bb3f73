# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""Schema 2 route documents of Gateway API routes (``httpRules``): what loads, and every refusal's path.

Aspects: the model of a valid document; a document is either CanaryRoute-shaped or ``httpRules``-shaped;
schema 1 documents stay as they were (no schema-2 keys) and versions above 2 are refused whole; each bad
field in a table with its path.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.config.document import ConfigError
from graylane.config.model import Backend, HeaderFilter, ListenerCert, PathMatch, Redirect
from tests.unit.docs import base_document, errors_of, exact, http_document, http_rule, load, prefix


def test_a_gateway_document_loads_into_the_model() -> None:
    rule = http_rule(
        exact(
            "/a", headers=[{"name": "X-A", "exact": "1"}], query=[{"name": "q", "exact": "v"}], method="GET"
        ),
        prefix("/b/"),
        backends=[("v1", 70), ("v2", 30), (None, 5)],
        name="main",
        filters={"requestHeaders": {"set": {"X-S": "s"}, "add": {"X-Add": "a"}, "remove": ["X-R"]}},
    )
    config = load(http_document(rule, listeners=[{"port": 80, "hosts": ["a.test", "*.b.test"]}]))
    assert config.is_http and config.route.kind == "HTTPRoute" and config.preserve_host
    assert config.route.created == "2026-01-01T00:00:00Z"
    assert [(item.port, item.hosts) for item in config.listeners] == [(80, ("a.test", "*.b.test"))]
    assert config.listeners[0].hostname is None, "no hostname: the port's listener without one"
    two = [
        {"port": 80, "hosts": ["a.test"], "hostname": "*.test"},
        {"port": 80, "hosts": [], "hostname": "b.test"},
    ]
    assert [(e.port, e.hostname) for e in load(http_document(rule, listeners=two)).listeners] == [
        (80, "*.test"), (80, "b.test")]  # fmt: skip
    assert config.listeners[0].tls == (), "an HTTP listener names no certificate"
    (parsed,) = config.http_rules
    assert parsed.name == "main"
    assert parsed.backends == (Backend("v1", 70), Backend("v2", 30), Backend(None, 5))
    first, second = parsed.matches
    assert first.path == PathMatch("Exact", "/a") and first.conditions.methods == ("GET",)
    assert first.conditions.headers[0].name == "X-A" and first.conditions.query[0].value == "v"
    assert second.path == PathMatch("PathPrefix", "/b"), "a trailing slash of a prefix is ignored"
    assert parsed.request_headers == HeaderFilter({"X-S": "s"}, {"X-Add": "a"}, ("X-R",))
    assert config.stable == config.canary == "" and config.weight == 0


def test_a_redirect_rule_and_an_empty_upstream_set_load() -> None:
    redirect = {"scheme": "https", "hostname": "example.org", "port": 8443, "statusCode": 301,
                "path": {"type": "ReplacePrefixMatch", "value": "/new"}}  # fmt: skip
    config = load(http_document(http_rule(backends=[], filters={"redirect": redirect}), upstreams={}))
    assert config.http_rules[0].redirect == Redirect(
        "https", "example.org", 8443, PathMatch("PathPrefix", "/new"), 301
    )
    defaults = load(http_document(http_rule(backends=[], filters={"redirect": {}}))).http_rules[0].redirect
    assert defaults == Redirect(None, None, None, None, 302)


def test_canary_documents_may_be_schema_2_and_schema_1_stays_strict() -> None:
    assert load(base_document(schemaVersion=2, preserveHost=True)).preserve_host
    assert errors_of(base_document(preserveHost=True)) == ["preserveHost"]
    assert errors_of(base_document(route={"namespace": "shop", "name": "c", "uid": "", "generation": 1,
                                          "kind": "HTTPRoute"})) == ["route.kind"]  # fmt: skip
    assert "httpRules" in errors_of(base_document(httpRules=[http_rule()]))


def test_newer_versions_are_refused_whole() -> None:
    with pytest.raises(ConfigError) as caught:
        load(http_document(schemaVersion=3))
    assert [str(e) for e in caught.value.errors] == [
        "schemaVersion: unsupported schema version (this proxy reads 1 and 2)"
    ]
    assert caught.value.reason == "schema-version"


BAD = [
    ({"stable": "v1"}, "stable"),
    ({"weight": 5}, "weight"),
    ({"rules": []}, "rules"),
    ({"hosts": ["a.test"]}, "hosts"),
    ({"listeners": []}, "listeners"),
    ({"listeners": [{"port": 80, "hosts": []}, {"port": 80, "hosts": []}]}, "listeners[1].port"),
    ({"listeners": [{"port": 0, "hosts": []}]}, "listeners[0].port"),
    ({"listeners": [{"port": 80, "hosts": [], "hostname": "a.test"}, {"port": 80, "hosts": [], "hostname": "a.test"}]}, "listeners[1].port"),
    ({"listeners": [{"port": 80, "hosts": [], "hostname": "A.test"}]}, "listeners[0].hostname"),
    ({"listeners": [{"port": 80, "hosts": [], "hostname": ["a.test"]}]}, "listeners[0].hostname"),
    ({"listeners": [{"port": 80, "hosts": ["A.test"]}]}, "listeners[0].hosts[0]"),
    ({"listeners": [{"port": 443, "hosts": [], "tls": []}]}, "listeners[0].tls"),
    ({"listeners": [{"port": 443, "hosts": [], "tls": [{"hostname": "a.test"}]}]}, "listeners[0].tls[0].secretName"),
    ({"listeners": [{"port": 443, "hosts": [], "tls": [{"secretName": "Bad_Name"}]}]}, "listeners[0].tls[0].secretName"),
    ({"listeners": [{"port": 443, "hosts": [], "tls": [{"secretName": "s", "hostname": "10.0.0.1"}]}]}, "listeners[0].tls[0].hostname"),
    ({"listeners": [{"port": 443, "hosts": [], "tls": [{"secretName": "s", "hostname": "a.test:443"}]}]}, "listeners[0].tls[0].hostname"),
    ({"listeners": [{"port": 443, "hosts": [], "tls": [{"secretName": "s", "key": "x"}]}]}, "listeners[0].tls[0].key"),
    ({"httpRules": {}}, "httpRules"),
    ({"route": {"namespace": "shop", "name": "w", "uid": "", "generation": 1}}, "route.kind"),
    ({"preserveHost": "yes"}, "preserveHost"),
    ({"route": {"namespace": "shop", "name": "w", "uid": "", "generation": 1,
                "creationTimestamp": "yesterday"}}, "route.creationTimestamp"),
]  # fmt: skip

BAD_RULES = [
    (http_rule(backends=[("nope", 1)]), "httpRules[0].backends[0].upstream"),
    (http_rule(backends=[("v1", -1)]), "httpRules[0].backends[0].weight"),
    (http_rule(backends=[("v1", 1_000_001)]), "httpRules[0].backends[0].weight"),
    (http_rule({"path": {"type": "Prefix", "value": "/"}}), "httpRules[0].matches[0].path.type"),
    (http_rule(prefix("no-slash")), "httpRules[0].matches[0].path.value"),
    (http_rule(prefix("/a/../b")), "httpRules[0].matches[0].path.value"),
    (http_rule({"path": {"type": "RegularExpression", "value": "(a)\\1"}}),
     "httpRules[0].matches[0].path.value"),
    (http_rule(prefix("/", method="get")), "httpRules[0].matches[0].method"),
    (http_rule(prefix("/", headers=[{"name": "Bad Name", "exact": "x"}])),
     "httpRules[0].matches[0].headers[0].name"),
    (http_rule(prefix("/", cookies=[])), "httpRules[0].matches[0].cookies"),
    (http_rule(backends=[("v1", 1)], filters={"redirect": {}}), "httpRules[0].backends"),
    (http_rule(filters={"redirect": {"statusCode": 304}}, backends=[]),
     "httpRules[0].filters.redirect.statusCode"),
    (http_rule(filters={"redirect": {"scheme": "ftp"}}, backends=[]), "httpRules[0].filters.redirect.scheme"),
    (http_rule(filters={"redirect": {"hostname": "*.a.test"}}, backends=[]),
     "httpRules[0].filters.redirect.hostname"),
    (http_rule(filters={"redirect": {"path": {"type": "Replace", "value": "/"}}}, backends=[]),
     "httpRules[0].filters.redirect.path.type"),
    (http_rule(filters={"requestHeaders": {"set": {"Host": "x"}}}),
     "httpRules[0].filters.requestHeaders.set.Host"),
    (http_rule(filters={"requestHeaders": {"add": {"X-A": "a\r\nX-B: b"}}}),
     "httpRules[0].filters.requestHeaders.add.X-A"),
    (http_rule(filters={"requestHeaders": {"remove": ["Transfer-Encoding"]}}),
     "httpRules[0].filters.requestHeaders.remove[0]"),
    (http_rule(filters={"requestHeaders": {"set": {"X-A": "1"}, "remove": ["x-a"]}}),
     "httpRules[0].filters.requestHeaders.remove[0]"),
    (http_rule(filters={"mirror": {}}), "httpRules[0].filters.mirror"),
    (http_rule(name="Not_A_Name"), "httpRules[0].name"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "where"), BAD, ids=[w for _, w in BAD])
def test_bad_document_fields_are_refused_with_their_path(override: dict[str, Any], where: str) -> None:
    assert where in errors_of(http_document(**override))


@pytest.mark.parametrize(("rule", "where"), BAD_RULES, ids=[w for _, w in BAD_RULES])
def test_bad_rules_are_refused_with_their_path(rule: dict[str, Any], where: str) -> None:
    assert where in errors_of(http_document(rule))


def test_a_route_without_rules_serves_nothing() -> None:
    assert load(http_document(httpRules=[])).http_rules == ()


def test_duplicate_rule_names_are_refused() -> None:
    paths = errors_of(http_document(http_rule(name="a"), http_rule(name="a")))
    assert paths == ["httpRules[1].name"]


def test_https_listener_certificates_are_parsed() -> None:
    """A listener entry names the Secret copies of its HTTPS Gateway listeners, each for a hostname or any."""
    certs = [{"secretName": "gw-tls-infra.c", "hostname": "*.w.test"}, {"secretName": "gw-tls-infra.d"}]
    config = load(http_document(http_rule(), listeners=[{"port": 443, "hosts": [], "tls": certs}]))
    assert config.listeners[0].tls == (
        ListenerCert("gw-tls-infra.c", "*.w.test"),
        ListenerCert("gw-tls-infra.d", None),
    )


GATEWAY = {"namespace": "infra", "name": "gw", "uid": "u-gw", "generation": 1, "kind": "Gateway"}
ON_80 = [{"port": 80, "hosts": [], "hostname": "*.example.com"}]


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"httpRules": [http_rule()]}, "httpRules"),  # a Gateway's listeners document has no rules
        ({"listeners": None}, "listeners"),
        ({"jwt": {"issuer": "x", "algorithms": ["RS256"], "jwksURL": "https://x/jwks"}}, "jwt"),
    ],
)
def test_a_gateway_listeners_document_has_listeners_only(override: dict[str, Any], where: str) -> None:
    doc = http_document(route=GATEWAY, listeners=ON_80, upstreams={})
    doc["httpRules"] = []
    good = load(doc)
    assert (good.key, good.is_http, good.http_rules) == ("gateway:infra/gw", True, ())
    doc.update(override)
    if doc.get("listeners") is None:
        doc.pop("listeners")
    assert where in errors_of(doc)


def test_a_canary_route_document_cannot_claim_to_be_a_gateway() -> None:
    assert "route.kind" in errors_of(base_document(schemaVersion=2, route={**GATEWAY, "name": "c"}))
