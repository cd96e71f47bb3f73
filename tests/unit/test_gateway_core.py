# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""The Gateway API core, table by table: hostname intersection, listeners on their own, route attachment
(parentRef, allowedRoutes, hostnames) and backendRef resolution with ReferenceGrants.

Rows named after conformance tests replay their manifests' situation with the expected reasons.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from graylane.gateway import hostnames
from graylane.gateway.certs import tls_secret as judge
from graylane.gateway.objects import GROUP
from graylane.gateway.plan import plan
from graylane.gateway.refs import Service
from tests.unit.gwworld import (
    NS,
    SERVICES,
    backend,
    gateway,
    gateway_class,
    grant,
    http_route,
    listener,
    parent,
    planned,
    tls_secret,
    world,
)

# -- hostnames -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listener_host", "route_hosts", "served"),
    [
        (None, [], ()),
        (None, ["a.test"], ("a.test",)),
        ("very.specific.com", [], ("very.specific.com",)),
        (
            "very.specific.com",
            ["non.matching.com", "*.nonmatchingwildcard.io", "very.specific.com"],
            ("very.specific.com",),
        ),
        ("*.wildcard.io", ["non.matching.com", "wildcard.io", "foo.wildcard.io"], ("foo.wildcard.io",)),
        ("*.wildcard.io", ["bar.foo.wildcard.io"], ("bar.foo.wildcard.io",)),
        ("*.anotherwildcard.io", ["*.anotherwildcard.io"], ("*.anotherwildcard.io",)),
        ("*.anotherwildcard.io", ["*.foo.anotherwildcard.io"], ("*.foo.anotherwildcard.io",)),
        ("foo.anotherwildcard.io", ["*.anotherwildcard.io"], ("foo.anotherwildcard.io",)),
        ("*.example.com", ["*.com"], ("*.example.com",)),
        ("*.example.com", ["example.com"], None),
        ("a.test", ["b.test"], None),
        ("a.test", ["*.a.test"], None),
    ],
)
def test_hostname_intersection(
    listener_host: str | None, route_hosts: list[str], served: tuple[str, ...] | None
) -> None:
    assert hostnames.intersect(listener_host, route_hosts) == served


def test_union_of_listeners_on_one_port() -> None:
    assert hostnames.union([("a.test",), ("b.test", "a.test")]) == ("a.test", "b.test")
    assert hostnames.union([("a.test",), ()]) == (), "a listener serving any Host serves all of them"


# -- listeners -------------------------------------------------------------------------------------------


def listener_conditions(gw: dict[str, Any], name: str, **kw: Any) -> dict[str, tuple[bool, str]]:
    out = planned(gw, **kw).gateways[(NS, gw["metadata"]["name"])]
    return {cond.type: (cond.status, cond.reason) for cond in out.listener_conditions[name]}


def kinds_of(gw: dict[str, Any], name: str, **kw: Any) -> tuple[tuple[str, str], ...]:
    out = planned(gw, **kw).gateways[(NS, gw["metadata"]["name"])]
    return next(v.kinds for v in out.listeners if v.listener.name == name)


CERT = {"group": "", "kind": "Secret", "name": "cert"}
GOOD = {(NS, "cert"): None}
LISTENER_CASES = [
    ("plain http", [listener()], "http", {}, {"Accepted": (True, "Accepted"), "Conflicted": (False, "NoConflicts"), "ResolvedRefs": (True, "ResolvedRefs"), "Programmed": (True, "Programmed")}),
    ("GatewayListenerUnsupportedProtocol", [listener(), listener("invalid", 1111, "INVALID")], "invalid", {}, {"Accepted": (False, "UnsupportedProtocol"), "Programmed": (False, "Invalid")}),
    ("tcp", [listener("tcp", 9000, "TCP")], "tcp", {}, {"Accepted": (False, "UnsupportedProtocol")}),
    ("passthrough", [listener("tls", 443, "HTTPS", tls={"mode": "Passthrough"})], "tls", {}, {"Accepted": (False, "UnsupportedValue")}),
    ("second http port", [listener(), listener("other", 8080)], "other", {}, {"Accepted": (True, "Accepted"), "Programmed": (True, "Programmed")}),
    ("second https port", [listener("s", 443, "HTTPS", certs=[CERT]), listener("other", 8443, "HTTPS", certs=[CERT])], "other", {"secrets": GOOD}, {"Accepted": (False, "PortUnavailable")}),
    ("first https port stays", [listener("s", 443, "HTTPS", certs=[CERT]), listener("other", 8443, "HTTPS", certs=[CERT])], "s", {"secrets": GOOD}, {"Accepted": (True, "Accepted")}),
    ("protocol conflict", [listener(), listener("s", 80, "HTTPS", certs=[CERT])], "s", {"secrets": GOOD}, {"Conflicted": (True, "ProtocolConflict"), "Programmed": (False, "Invalid")}),
    ("hostname conflict", [listener("a", hostname="x.test"), listener("b", hostname="x.test")], "b", {}, {"Conflicted": (True, "HostnameConflict")}),
    ("distinct hostnames", [listener("a", hostname="x.test"), listener("b", hostname="y.test")], "b", {}, {"Conflicted": (False, "NoConflicts")}),
    ("invalid route kind", [listener(allowed={"kinds": [{"kind": "TCPRoute"}]})], "http", {}, {"ResolvedRefs": (False, "InvalidRouteKinds"), "Accepted": (True, "Accepted")}),
    ("https good cert", [listener("s", 443, "HTTPS", certs=[CERT])], "s", {"secrets": GOOD, "https_served": True}, {"ResolvedRefs": (True, "ResolvedRefs"), "Programmed": (True, "Programmed")}),
    ("https before TLS is built", [listener("s", 443, "HTTPS", certs=[CERT])], "s", {"secrets": GOOD}, {"Accepted": (True, "Accepted"), "ResolvedRefs": (True, "ResolvedRefs"), "Programmed": (False, "Pending")}),
    ("nonexistent secret", [listener("s", 443, "HTTPS", certs=[CERT])], "s", {}, {"ResolvedRefs": (False, "InvalidCertificateRef"), "Programmed": (False, "Invalid")}),
    ("unsupported group", [listener("s", 443, "HTTPS", certs=[{**CERT, "group": "wrong.group.company.io"}])], "s", {"secrets": GOOD}, {"ResolvedRefs": (False, "InvalidCertificateRef")}),
    ("unsupported kind", [listener("s", 443, "HTTPS", certs=[{**CERT, "kind": "WrongKind"}])], "s", {"secrets": GOOD}, {"ResolvedRefs": (False, "InvalidCertificateRef")}),
    ("malformed secret", [listener("s", 443, "HTTPS", certs=[CERT])], "s", {"secrets": {(NS, "cert"): "tls.crt is not a PEM certificate"}}, {"ResolvedRefs": (False, "InvalidCertificateRef")}),
    ("no certificate refs", [listener("s", 443, "HTTPS", certs=[])], "s", {}, {"ResolvedRefs": (False, "InvalidCertificateRef")}),
    ("GatewaySecretMissingReferenceGrant", [listener("s", 443, "HTTPS", certs=[{**CERT, "namespace": "certs"}])], "s", {"secrets": {("certs", "cert"): None}}, {"ResolvedRefs": (False, "RefNotPermitted")}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "listeners", "name", "kw", "expected"), LISTENER_CASES, ids=[c[0] for c in LISTENER_CASES]
)
def test_listener_conditions(
    case: str,
    listeners: list[dict[str, Any]],
    name: str,
    kw: dict[str, Any],
    expected: dict[str, tuple[bool, str]],
) -> None:
    got = listener_conditions(gateway("gw", *listeners), name, **kw)
    assert {k: got[k] for k in expected} == expected


def test_supported_kinds() -> None:
    assert kinds_of(gateway("gw", listener()), "http") == ((GROUP, "HTTPRoute"),)
    mixed = listener(allowed={"kinds": [{"kind": "HTTPRoute"}, {"kind": "GRPCRoute"}]})
    assert kinds_of(gateway("gw", mixed), "http") == ((GROUP, "HTTPRoute"),)
    assert kinds_of(gateway("gw", listener("x", 1111, "INVALID")), "x") == ()


@pytest.mark.parametrize(
    ("grants", "status"),
    [([grant("g", "certs", [(GROUP, "Gateway", NS)], [("", "Secret", None)])], (True, "ResolvedRefs")),
     ([grant("g", "certs", [(GROUP, "Gateway", NS)], [("", "Secret", "cert")])], (True, "ResolvedRefs")),
     ([grant("g", "certs", [(GROUP, "Gateway", NS)], [("", "Secret", "other")])], (False, "RefNotPermitted")),
     ([grant("g", "certs", [(GROUP, "Gateway", "elsewhere")], [("", "Secret", None)])], (False, "RefNotPermitted")),
     ([grant("g", "certs", [(GROUP, "HTTPRoute", NS)], [("", "Secret", None)])], (False, "RefNotPermitted")),
     ([grant("g", NS, [(GROUP, "Gateway", NS)], [("", "Secret", None)])], (False, "RefNotPermitted"))],
    ids=["GatewaySecretReferenceGrantAllInNamespace", "GatewaySecretReferenceGrantSpecific", "GatewaySecretInvalidReferenceGrant",
         "grant-from-other-namespace", "grant-for-routes", "grant-in-the-wrong-namespace"],
)  # fmt: skip
def test_cross_namespace_certificates_need_a_grant(
    grants: list[dict[str, Any]], status: tuple[bool, str]
) -> None:
    gw = gateway("gw", listener("s", 443, "HTTPS", certs=[{**CERT, "namespace": "certs"}]))
    out = planned(gw, *grants, secrets={("certs", "cert"): None}).gateways[(NS, "gw")]
    resolved = out.listener_conditions["s"][2]
    assert (resolved.status, resolved.reason) == status


def tls_problem(secret: dict[str, Any], days: int = 0) -> str | None:
    return judge(secret, now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)).problem


def test_tls_secret_checks() -> None:
    """The checks of graylane.tls (the proxy's own); the data is kept only for a usable Secret."""
    good = tls_secret()
    kept = judge(good, now=datetime.datetime.now(datetime.UTC))
    assert kept.problem is None and kept.data == good["data"] and good["data"]["tls.key"] not in repr(kept)
    malformed = {
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "SGVsbG8gd29ybGQK", "tls.key": "SGVsbG8gd29ybGQK"},
    }
    assert (
        tls_problem(malformed)
        == "tls.crt: holds no PEM block (-----BEGIN ...-----); tls.key: holds no PEM block (-----BEGIN ...-----)"
    )
    assert tls_problem({**good, "data": {"tls.crt": "!!"}}) == "data.tls.crt is not base64"
    assert tls_problem({**good, "type": "Opaque"}) == "type 'Opaque' is not kubernetes.io/tls"
    assert tls_problem({**good, "data": {}}) == "tls.crt: is empty; tls.key: is empty"
    swapped = judge(
        {**good, "data": {**good["data"], "tls.key": good["data"]["tls.crt"]}},
        now=datetime.datetime.now(datetime.UTC),
    )
    assert (
        swapped.problem is not None
        and swapped.problem.startswith("tls.key: must be one private key")
        and not swapped.data
    )
    assert "expired" in str(tls_problem(good, days=2))


# -- attachment ------------------------------------------------------------------------------------------


def accepted(route: dict[str, Any], *objects: dict[str, Any]) -> list[tuple[bool, str]]:
    out = planned(route, *objects).routes.get((route["metadata"]["namespace"], route["metadata"]["name"]), ())
    return [(p.conditions[0].status, p.conditions[0].reason) for p in out]


SAME = gateway("same-namespace")
ALL = gateway("all-namespaces", listener(allowed={"namespaces": {"from": "All"}}))
SELECTOR = gateway(
    "backend-namespaces",
    listener(
        allowed={
            "namespaces": {
                "from": "Selector",
                "selector": {"matchLabels": {"gateway-conformance": "backend"}},
            }
        }
    ),
)
EMPTY_SELECTOR = gateway(
    "empty-selector", listener(allowed={"namespaces": {"from": "Selector", "selector": {}}})
)
TWO = gateway("two", listener("a", hostname="a.test"), listener("b", hostname="*.b.test"))
MIRROR_V2 = {
    "type": "RequestMirror",
    "requestMirror": {"backendRef": {"name": "infra-backend-v2", "port": 8080}},
}
ATTACH_CASES = [
    ("same namespace", http_route("r"), [SAME], [(True, "Accepted")]),
    ("HTTPRouteInvalidCrossNamespaceParentRef", http_route("r", parent("same-namespace", NS), ns="web"), [SAME], [(False, "NotAllowedByListeners")]),
    ("all namespaces", http_route("r", parent("all-namespaces", NS), ns="web"), [ALL], [(True, "Accepted")]),
    ("HTTPRouteCrossNamespace", http_route("r", parent("backend-namespaces", NS), ns="apps"), [SELECTOR], [(True, "Accepted")]),
    ("selector does not match", http_route("r", parent("backend-namespaces", NS), ns="web"), [SELECTOR], [(False, "NotAllowedByListeners")]),
    ("empty selector selects all", http_route("r", parent("empty-selector", NS), ns="web"), [EMPTY_SELECTOR], [(True, "Accepted")]),
    ("HTTPRouteInvalidParentRefNotMatchingSectionName", http_route("r", parent("same-namespace", sectionName="nope")), [SAME], [(False, "NoMatchingParent")]),
    ("port not on the gateway", http_route("r", parent("same-namespace", port=8080)), [SAME], [(False, "NoMatchingParent")]),
    ("section name", http_route("r", parent("two", sectionName="b"), hostnames=["x.b.test"]), [TWO], [(True, "Accepted")]),
    ("section name, other hostname", http_route("r", parent("two", sectionName="b"), hostnames=["a.test"]), [TWO], [(False, "NoMatchingListenerHostname")]),
    ("no hostname intersection", http_route("r", parent("two"), hostnames=["c.test"]), [TWO], [(False, "NoMatchingListenerHostname")]),
    ("unknown gateway: not ours to report", http_route("r", parent("missing")), [SAME], []),
    ("other class: not ours", http_route("r", parent("theirs")), [gateway("theirs", klass="other")], []),
    ("not a gateway", http_route("r", parent("svc", kind="Service", group="")), [SAME], []),
    ("two parents", http_route("r", parent("same-namespace"), parent("all-namespaces")), [SAME, ALL], [(True, "Accepted"), (True, "Accepted")]),
    ("kinds exclude HTTPRoute", http_route("r", parent("g")), [gateway("g", listener(allowed={"namespaces": {"from": "Same"}, "kinds": [{"kind": "GRPCRoute"}]}))], [(False, "NotAllowedByListeners")]),
    ("unsupported filter", http_route("r", rules=[{"filters": [{"type": "ExtensionRef", "extensionRef": {"group": "x.test", "kind": "K", "name": "n"}}], "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(False, "UnsupportedValue")]),
    ("HTTPRouteRequestTimeout", http_route("r", rules=[{"timeouts": {"request": "500ms", "backendRequest": "0s"}, "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(True, "Accepted")]),
    ("a duration Graylane does not read", http_route("r", rules=[{"timeouts": {"request": "1d"}, "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(False, "UnsupportedValue")]),
    ("HTTPRouteRewriteHost", http_route("r", rules=[{"filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "one.example.org"}}], "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(True, "Accepted")]),
    ("HTTPRouteResponseHeaderModifier", http_route("r", rules=[{"filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": "X-A", "value": "1"}]}}], "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(True, "Accepted")]),
    ("HTTPRouteRequestMirror", http_route("r", rules=[{"filters": [MIRROR_V2], "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(True, "Accepted")]),
    ("HTTPRouteRequestMultipleMirrors", http_route("r", rules=[{"filters": [MIRROR_V2, {**MIRROR_V2, "requestMirror": {"backendRef": {"name": "infra-backend-v3", "port": 8080}}}], "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(True, "Accepted")]),
    ("prefix rewrite of an Exact match", http_route("r", rules=[{"matches": [{"path": {"type": "Exact", "value": "/a"}}], "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"}}}], "backendRefs": [backend("infra-backend-v1")]}]), [SAME], [(False, "UnsupportedValue")]),
    ("HTTPRouteBackendRequestHeaderModifier", http_route("r", rules=[{"backendRefs": [{**backend("infra-backend-v1"), "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "X-B", "value": "1"}]}}]}]}]), [SAME], [(True, "Accepted")]),
    ("a rewrite on a backendRef", http_route("r", rules=[{"backendRefs": [{**backend("infra-backend-v1"), "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "x.test"}}]}]}]), [SAME], [(False, "UnsupportedValue")]),
    ("a path the proxy refuses", http_route("r", rules=[{"matches": [{"path": {"type": "PathPrefix", "value": "/a/../b"}}]}]), [SAME], [(False, "UnsupportedValue")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "route", "gateways", "expected"), ATTACH_CASES, ids=[c[0] for c in ATTACH_CASES]
)
def test_route_acceptance(
    case: str, route: dict[str, Any], gateways: list[dict[str, Any]], expected: list[tuple[bool, str]]
) -> None:
    assert accepted(route, *gateways, gateway_class("other", "example.com/other")) == expected


def test_unsupported_value_names_the_field() -> None:
    route = http_route("r", rules=[{"backendRefs": [backend("infra-backend-v1")]},
                                   {"filters": [{"type": "ExtensionRef", "extensionRef": {}}]}])  # fmt: skip
    (status,) = planned(route, SAME).routes[(NS, "r")]
    assert (
        status.conditions[0].message
        == "spec.rules[1].filters[0].type: ExtensionRef is not supported by Graylane yet"
    )


# -- backend references ------------------------------------------------------------------------------------


WEB_GRANT = grant("g", "web", [(GROUP, "HTTPRoute", NS)], [("", "Service", None)])
REF_CASES = [
    ("resolved", [backend("infra-backend-v1")], [], (True, "ResolvedRefs", "")),
    ("HTTPRouteInvalidNonExistentBackendRef", [backend("nonexistent-backend")], [], (False, "BackendNotFound", "spec.rules[0].backendRefs[0]: Service infra/nonexistent-backend not found")),
    ("HTTPRouteInvalidBackendRefUnknownKind", [backend("infra-backend-v1", kind="UnknownKind")], [], (False, "InvalidKind", "spec.rules[0].backendRefs[0]: core/UnknownKind is not a Service")),
    ("HTTPRouteInvalidCrossNamespaceBackendRef", [backend("web-backend", namespace="web")], [], (False, "RefNotPermitted", "spec.rules[0].backendRefs[0]: no ReferenceGrant in web lets HTTPRoutes of infra refer to it")),
    ("HTTPRouteReferenceGrant", [backend("web-backend", namespace="web")], [WEB_GRANT], (True, "ResolvedRefs", "")),
    ("HTTPRouteInvalidReferenceGrant", [backend("web-backend", namespace="web")], [grant("g", "web", [(GROUP, "HTTPRoute", NS)], [("", "Service", "other")])], (False, "RefNotPermitted", "spec.rules[0].backendRefs[0]: no ReferenceGrant in web lets HTTPRoutes of infra refer to it")),
    ("port not on the service", [backend("infra-backend-v1", port=9999)], [], (False, "BackendNotFound", "spec.rules[0].backendRefs[0].port: Service infra/infra-backend-v1 has no port 9999")),
    ("HTTPRoutePartiallyInvalidViaInvalidReferenceGrant", [backend("infra-backend-v1"), backend("web-backend", namespace="web")], [], (False, "RefNotPermitted", "spec.rules[0].backendRefs[1]: no ReferenceGrant in web lets HTTPRoutes of infra refer to it")),
]  # fmt: skip


@pytest.mark.parametrize(("case", "backends", "grants", "expected"), REF_CASES, ids=[c[0] for c in REF_CASES])
def test_backend_references(
    case: str, backends: list[dict[str, Any]], grants: list[dict[str, Any]], expected: tuple[bool, str, str]
) -> None:
    route = http_route("r", rules=[{"backendRefs": backends}])
    services = {**SERVICES, ("web", "web-backend"): Service("web", "web-backend", frozenset({8080}))}
    (status,) = plan(world(route, SAME, *grants, services=services)).routes[(NS, "r")]
    refs = status.conditions[1]
    assert (refs.status, refs.reason, refs.message) == expected
    assert status.conditions[0].status, "unresolved backends leave the route Accepted"


def test_a_headless_service_is_reached_at_its_target_port() -> None:
    """HTTPRouteServiceTypes: a headless Service's name resolves to its pods, which listen on targetPort."""
    services = {
        **SERVICES,
        (NS, "headless"): Service(NS, "headless", frozenset({8080}), {8080: 3000}),
        (NS, "manual"): Service(NS, "manual", frozenset({8080})),
    }
    route = http_route(
        "r", rules=[{"backendRefs": [backend("headless")]}, {"backendRefs": [backend("manual")]}]
    )
    docs = plan(world(route, SAME, services=services)).gateways[(NS, "same-namespace")].documents
    assert docs["uid-r"]["upstreams"] == {
        "headless.infra.8080": {"url": "http://headless.infra.svc:3000"},
        "manual.infra.8080": {"url": "http://manual.infra.svc:8080"},
    }
