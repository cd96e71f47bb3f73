# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""The whole plan of the Gateway controller: Gateway conditions, attachedRoutes, the documents it writes,
the status documents it renders, and that no object of any shape stops it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.config.document import load_route_document
from graylane.gateway import conditions as c
from graylane.gateway.objects import parse_gateway, parse_gateway_class, parse_reference_grant
from graylane.gateway.plan import Runtime, plan
from graylane.gateway.routes import parse_http_route
from graylane.gateway.status import class_status, gateway_status, route_status
from tests.unit.gwworld import NS, READY, backend, gateway, http_route, listener, parent, planned, world

SAME = gateway("same-namespace")


def gw_conditions(gw: dict[str, Any], runtime: Runtime | None = READY) -> dict[str, tuple[bool, str]]:
    key = (NS, gw["metadata"]["name"])
    out = plan(world(gw, runtime={key: runtime} if runtime else {})).gateways[key]
    return {cond.type: (cond.status, cond.reason) for cond in out.conditions}


def test_gateway_accepted_and_programmed() -> None:
    assert gw_conditions(SAME) == {"Accepted": (True, "Accepted"), "Programmed": (True, "Programmed")}
    assert gw_conditions(SAME, None)["Programmed"] == (False, "AddressNotAssigned")
    assert gw_conditions(SAME, Runtime("10.0.0.1", ready=False))["Programmed"] == (False, "Pending")
    only_bad = gateway("gw", listener("invalid", 1111, "INVALID"))
    assert gw_conditions(only_bad) == {
        "Accepted": (False, "ListenersNotValid"),
        "Programmed": (False, "Invalid"),
    }
    some_bad = gateway("gw", listener(), listener("invalid", 1111, "INVALID"))
    assert gw_conditions(some_bad) == {
        "Accepted": (True, "ListenersNotValid"),
        "Programmed": (True, "Programmed"),
    }
    addresses = gateway("gw", addresses=[{"type": "IPAddress", "value": "10.1.1.1"}])
    assert gw_conditions(addresses)["Accepted"] == (False, "UnsupportedAddress")
    ref = {"group": "example.com", "kind": "GatewayConfig", "name": "cfg"}
    parameters = gateway("gw", infrastructure={"parametersRef": ref, "labels": {"a": "b"}})
    assert gw_conditions(parameters)["Accepted"] == (False, "InvalidParameters")  # Graylane takes none
    assert gw_conditions(gateway("gw", infrastructure={"labels": {"a": "b"}}))["Accepted"] == (True, "Accepted")


def test_attached_routes_count_accepted_routes_per_listener() -> None:
    """GatewayWithAttachedRoutes: two routes attach; a third with a foreign hostname does not count."""
    gw = gateway(
        "two-attached",
        listener(
            hostname="foo.example.com",
            allowed={
                "kinds": [{"kind": "HTTPRoute"}],
                "namespaces": {
                    "from": "Selector",
                    "selector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                },
            },
        ),
    )
    routes = [http_route(name, parent("two-attached")) for name in ("http-route-2", "http-route-3")]
    odd = http_route("http-route-not-accepted", parent("two-attached"), hostnames=["not-accepted.test.com"])
    out = planned(gw, *routes, odd)
    assert out.gateways[(NS, "two-attached")].attached == {"http": 2}
    (status,) = out.routes[(NS, "http-route-not-accepted")]
    assert (status.conditions[0].status, status.conditions[0].reason) == (False, "NoMatchingListenerHostname")


def test_unresolved_listener_still_counts_its_routes() -> None:
    """GatewayWithAttachedRoutes: a listener with a missing certificate counts the route attached to it."""
    gw = gateway(
        "unresolved",
        listener("tls", 443, "HTTPS", certs=[{"group": "", "kind": "Secret", "name": "does-not-exist"}]),
    )
    route = http_route(
        "http-route-4", parent("unresolved", sectionName="tls"), rules=[{"backendRefs": [backend("nope")]}]
    )
    out = planned(gw, route)
    planned_gw = out.gateways[(NS, "unresolved")]
    assert planned_gw.attached == {"tls": 1}
    assert {x.type: (x.status, x.reason) for x in planned_gw.listener_conditions["tls"]}["Programmed"] == (
        False,
        "Invalid",
    )
    assert planned_gw.documents == {}, "nothing is served on a listener that is not valid"
    assert out.routes[(NS, "http-route-4")][0].conditions[1].status is False


def test_a_document_per_route_and_gateway() -> None:
    gw = gateway(
        "gw",
        listener("a", hostname="a.test"),
        listener("w", hostname="*.w.test"),
        listener("s", 443, "HTTPS", certs=[{"group": "", "kind": "Secret", "name": "cert"}]),
    )
    rules = [
        {"matches": [{"path": {"type": "Exact", "value": "/x"}, "headers": [{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}],
                      "queryParams": [{"type": "RegularExpression", "name": "q", "value": "v[0-9]"}], "method": "GET"}],
         "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-S", "value": "s"}], "add": [{"name": "X-Ad", "value": "a"}], "remove": ["X-R"]}}],
         "backendRefs": [backend("infra-backend-v1", weight=3), backend("missing", weight=1), backend("infra-backend-v2", weight=0)]},
        {"name": "moved", "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "example.org", "statusCode": 301, "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}}}]},
    ]  # fmt: skip
    route = http_route("r", parent("gw"), hostnames=["a.test", "x.w.test", "z.test"], rules=rules)
    docs = planned(gw, route, secrets={(NS, "cert"): None}).gateways[(NS, "gw")].documents
    doc = docs["uid-r"]
    assert doc["listeners"] == [  # one entry per listener: a request only sees its most specific listener's
        {"port": 80, "hosts": ["x.w.test"], "hostname": "*.w.test"},
        {"port": 80, "hosts": ["a.test"], "hostname": "a.test"},
        {
            "port": 443,
            "hosts": ["a.test", "x.w.test", "z.test"],
            "tls": [{"secretName": "graylane-gw-infra-gw-tls-infra.cert"}],
        },  # the listener has no hostname
    ]
    assert doc["upstreams"] == {"infra-backend-v1.infra.8080": {"url": "http://infra-backend-v1.infra.svc:8080"},
                                "infra-backend-v2.infra.8080": {"url": "http://infra-backend-v2.infra.svc:8080"}}  # fmt: skip
    first, second = doc["httpRules"]
    assert first["matches"] == [{"path": {"type": "Exact", "value": "/x"}, "headers": [{"name": "X-A", "exact": "1"}],
                                 "query": [{"name": "q", "regex": "v[0-9]"}], "method": "GET"}]  # fmt: skip
    assert first["backends"] == [{"upstream": "infra-backend-v1.infra.8080", "weight": 3}, {"upstream": None, "weight": 1},
                                 {"upstream": "infra-backend-v2.infra.8080", "weight": 0}]  # fmt: skip
    assert first["filters"] == {
        "requestHeaders": {"set": {"X-S": "s"}, "add": {"X-Ad": "a"}, "remove": ["X-R"]}
    }
    assert second == {"name": "moved", "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}], "backends": [],
                      "filters": {"redirect": {"hostname": "example.org", "statusCode": 301, "path": {"type": "ReplacePrefixMatch", "value": "/new"}}}}  # fmt: skip
    config = load_route_document(doc)
    assert (
        config.route.kind == "HTTPRoute"
        and config.route.created == "2026-01-01T00:00:00Z"
        and config.preserve_host
    )


def test_one_route_on_two_gateways_and_a_bad_route_stops_nothing() -> None:
    other = gateway("other", listener(allowed={"namespaces": {"from": "All"}}))
    both = http_route("both", parent("same-namespace"), parent("other"))
    bad = http_route("bad", rules=[{"filters": [{"type": "ExtensionRef", "extensionRef": {}}]}])
    worse = {
        "metadata": {"name": "worse", "namespace": NS, "uid": "uid-worse"},
        "spec": {"parentRefs": [{"name": "same-namespace"}], "rules": "not a list", "hostnames": 7},
    }
    out = planned(SAME, other, both, bad, worse)
    assert set(out.gateways[(NS, "same-namespace")].documents) == {"uid-both", "uid-worse"}
    assert set(out.gateways[(NS, "other")].documents) == {"uid-both"}
    assert [p.parent["name"] for p in out.routes[(NS, "both")]] == ["same-namespace", "other"]
    assert out.routes[(NS, "bad")][0].conditions[0].reason == "UnsupportedValue"
    assert out.gateways[(NS, "same-namespace")].attached == {"http": 2}


def test_gateway_class_conditions() -> None:
    from tests.unit.gwworld import gateway_class

    out = plan(world(gateway_class("with-params", parametersRef={"group": "x", "kind": "Y", "name": "z"}),
                     gateway_class("foreign", "example.com/other")))  # fmt: skip
    assert set(out.classes) == {"graylane", "with-params"}, "only classes naming Graylane's controller"
    assert out.classes["with-params"][0].reason == "InvalidParameters"
    klass = parse_gateway_class(gateway_class())
    status = class_status(klass, out.classes["graylane"], bundle_version="v1.6.3", now="T1", previous={})
    assert [f["name"] for f in status["supportedFeatures"]] == [  # what make conformance passed, sorted
        "Gateway", "GatewayHTTPListenerIsolation", "GatewayPort8080", "HTTPRoute", "HTTPRoute303RedirectStatusCode", "HTTPRoute307RedirectStatusCode",
        "HTTPRoute308RedirectStatusCode", "HTTPRouteBackendProtocolWebSocket",
        "HTTPRouteBackendRequestHeaderModification", "HTTPRouteBackendTimeout", "HTTPRouteHostRewrite",
        "HTTPRouteMethodMatching", "HTTPRouteNamedRouteRule", "HTTPRouteParentRefPort", "HTTPRoutePathRedirect",
        "HTTPRoutePathRewrite",
        "HTTPRoutePortRedirect", "HTTPRouteQueryParamMatching", "HTTPRouteRequestMirror",
        "HTTPRouteRequestMultipleMirrors", "HTTPRouteRequestPercentageMirror", "HTTPRouteRequestTimeout",
        "HTTPRouteResponseHeaderModification", "HTTPRouteSchemeRedirect", "ReferenceGrant",
    ]  # fmt: skip
    assert [(x["type"], x["status"], x["reason"]) for x in status["conditions"]] == [
        ("Accepted", "True", "Accepted"), ("SupportedVersion", "True", "SupportedVersion")]  # fmt: skip
    old = class_status(klass, out.classes["graylane"], bundle_version="v1.7.0", now="T1", previous={})
    assert old["conditions"][1]["reason"] == "UnsupportedVersion"


def test_status_keeps_transition_times_and_other_controllers() -> None:
    out = planned(SAME, http_route("r"))
    first = gateway_status(out.gateways[(NS, "same-namespace")], now="T1", previous={})
    assert first["addresses"] == [{"type": "IPAddress", "value": "10.96.0.10"}]
    (lst,) = first["listeners"]
    assert lst["attachedRoutes"] == 1 and lst["supportedKinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}
    ]
    assert all(
        x["observedGeneration"] == 1 and x["lastTransitionTime"] == "T1"
        for x in lst["conditions"] + first["conditions"]
    )
    again = gateway_status(out.gateways[(NS, "same-namespace")], now="T2", previous=first)
    assert again == first, "nothing changed: nothing to patch"
    theirs = {"parentRef": {"name": "x"}, "controllerName": "example.com/other", "conditions": []}
    stale = {"parentRef": {"name": "gone"}, "controllerName": c.CONTROLLER, "conditions": []}
    route = parse_http_route({**http_route("r"), "status": {"parents": [theirs, stale]}})
    status = route_status(route, out.routes[(NS, "r")], controller=c.CONTROLLER, now="T3")
    assert [p["parentRef"]["name"] for p in status["parents"]] == ["x", "same-namespace"]


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                       max_leaves=12)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(gw_spec=JSONISH, route_spec=JSONISH, grant_spec=JSONISH)
def test_objects_of_any_shape_never_crash_the_plan(gw_spec: Any, route_spec: Any, grant_spec: Any) -> None:
    gw = {"metadata": {"name": "g", "namespace": NS}, "spec": gw_spec}
    route = {"metadata": {"name": "r", "namespace": NS}, "spec": route_spec, "status": route_spec}
    grant = {"metadata": {"name": "x", "namespace": NS}, "spec": grant_spec}
    from graylane.gateway.plan import World

    w = World(classes=(parse_gateway_class({"spec": {"controllerName": c.CONTROLLER}, "metadata": {"name": "graylane"}}),),
              gateways=(parse_gateway(gw), parse_gateway({**gw, "spec": {"gatewayClassName": "graylane", "listeners": [gw_spec]}})),
              routes=(parse_http_route(route), parse_http_route({**route, "spec": {"parentRefs": [{"name": "g"}], "rules": [route_spec]}})),
              grants=(parse_reference_grant(grant),))  # fmt: skip
    plan(w)


def test_an_https_only_gateway_before_tls_is_built() -> None:
    """The Gateway's address and proxies are in place (Programmed); its HTTPS listener says it is not served."""
    gw = gateway(
        "secure", listener("https", 443, "HTTPS", certs=[{"group": "", "kind": "Secret", "name": "c"}])
    )
    out = plan(world(gw, secrets={(NS, "c"): None})).gateways[(NS, "secure")]
    assert [(x.type, x.status) for x in out.conditions] == [("Accepted", True), ("Programmed", True)]
    assert {x.type: x.reason for x in out.listener_conditions["https"]}["Programmed"] == "Pending"
    served = plan(world(gw, secrets={(NS, "c"): None}, https_served=True)).gateways[(NS, "secure")]
    assert {x.type: x.status for x in served.listener_conditions["https"]}["Programmed"] is True
