# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""The ingress-nginx canary behaviour table: annotations of a canary Ingress and, per request, the track
ingress-nginx sends it to.

Every row is a rule of ingress-nginx's documentation, docs/user-guide/nginx-configuration/annotations.md,
section "Canary" (quoted in the comments), as its balancer implements it (rootfs/etc/nginx/lua/balancer.lua,
``route_to_alternative_balancer``). Served through the proxy: tests/proxy/test_import_behaviour.py; the
import's output on the real API server: tests/cli/test_import_cluster.py.
"""

from __future__ import annotations

from dataclasses import dataclass


def cookie(value: str, name: str = "canary") -> dict[str, str]:
    return {"Cookie": f"{name}={value}"}


@dataclass(frozen=True)
class Case:
    name: str
    annotations: dict[str, str]
    requests: list[tuple[dict[str, str], str]]  # request headers -> the track ingress-nginx sends it to


ALWAYS, NEVER, OTHER = {"X-Canary": "always"}, {"X-Canary": "never"}, {"X-Canary": "maybe"}


CASES = [
    # "canary-by-header: ... When the request header is set to always, it will be routed to the canary. When the
    # header is set to never, it will never be routed to the canary. For any other value, the header will be
    # ignored and the request compared against the other canary rules by precedence."
    Case("header always/never/other, weight 0", {"canary-by-header": "X-Canary"},
         [({}, "stable"), (ALWAYS, "canary"), (NEVER, "stable"), (OTHER, "stable"), ({"X-Canary": "Always"}, "stable")]),
    Case("header never beats weight 100", {"canary-by-header": "X-Canary", "canary-weight": "100"},
         [({}, "canary"), (ALWAYS, "canary"), (NEVER, "stable"), (OTHER, "canary")]),
    # "canary-by-header-value: The header value to match ... When the request header is set to this value, it
    # will be routed to the canary. For any other header value, the header will be ignored ..."
    Case("header value", {"canary-by-header": "X-Canary", "canary-by-header-value": "v2"},
         [({"X-Canary": "v2"}, "canary"), (ALWAYS, "stable"), ({"X-Canary": "V2"}, "stable"), ({}, "stable")]),
    Case("header value: never is just another value", {"canary-by-header": "X-Canary", "canary-by-header-value": "v2", "canary-weight": "100"},
         [(NEVER, "canary"), ({"X-Canary": "v2"}, "canary"), ({}, "canary")]),
    # "canary-by-header-pattern: This works the same way as canary-by-header-value except it does PCRE Regex
    # matching" (ngx.re.match: a search anywhere in the value)
    Case("header pattern searches", {"canary-by-header": "X-Canary", "canary-by-header-pattern": "beta"},
         [({"X-Canary": "is-beta-user"}, "canary"), ({"X-Canary": "beta"}, "canary"), ({"X-Canary": "alpha"}, "stable"), ({}, "stable")]),
    Case("header pattern anchored", {"canary-by-header": "X-Canary", "canary-by-header-pattern": "^v[0-9]+$"},
         [({"X-Canary": "v12"}, "canary"), ({"X-Canary": "xv12"}, "stable"), ({"X-Canary": "v12a"}, "stable")]),
    # "Note that when canary-by-header-value is set this annotation will be ignored."
    Case("header pattern ignored when a value is set", {"canary-by-header": "X-Canary", "canary-by-header-value": "yes", "canary-by-header-pattern": ".*"},
         [({"X-Canary": "no"}, "stable"), ({"X-Canary": "yes"}, "canary")]),
    # balancer.lua reads the header as $http_<name with - replaced by _>: X_Canary is the X-Canary header
    Case("header name with underscore", {"canary-by-header": "X_Canary"},
         [(ALWAYS, "canary"), (NEVER, "stable")]),
    # "canary-by-cookie: ... When the cookie value is set to always, it will be routed to the canary. When the
    # cookie is set to never, it will never be routed to the canary. For any other value, the cookie will be
    # ignored and the request compared against the other canary rules by precedence."
    Case("cookie always/never/other, weight 0", {"canary-by-cookie": "canary"},
         [(cookie("always"), "canary"), (cookie("never"), "stable"), (cookie("maybe"), "stable"), ({}, "stable"), (cookie("always", "other"), "stable")]),
    Case("cookie never beats weight 100", {"canary-by-cookie": "canary", "canary-weight": "100"},
         [(cookie("never"), "stable"), (cookie("maybe"), "canary"), ({}, "canary")]),
    # "Canary rules are evaluated in order of precedence. Precedence is as follows:
    # canary-by-header -> canary-by-cookie -> canary-weight"
    Case("header before cookie", {"canary-by-header": "X-Canary", "canary-by-cookie": "canary"},
         [({**NEVER, **cookie("always")}, "stable"), ({**ALWAYS, **cookie("never")}, "canary"),
          ({**OTHER, **cookie("always")}, "canary"), (cookie("never"), "stable")]),
    Case("header value, then cookie, then weight", {"canary-by-header": "X-Canary", "canary-by-header-value": "v2", "canary-by-cookie": "canary", "canary-weight": "100"},
         [({"X-Canary": "v3", **cookie("never")}, "stable"), ({"X-Canary": "v2", **cookie("never")}, "canary"), ({"X-Canary": "v3"}, "canary")]),
    # "canary-weight: ... A weight of 0 implies that no requests will be sent to the service in the Canary
    # ingress by this canary rule. A weight of <weight-total> means implies all requests will be sent to the
    # alternative service specified in the Ingress."
    Case("weight 0", {"canary-weight": "0"}, [({}, "stable")] * 20),
    Case("weight 100", {"canary-weight": "100"}, [({}, "canary")] * 20),
    # "<weight-total> defaults to 100, and can be increased via nginx.ingress.kubernetes.io/canary-weight-total"
    Case("weight equal to a raised total", {"canary-weight": "1000", "canary-weight-total": "1000"}, [({}, "canary")] * 20),
    Case("weight 0 of a raised total", {"canary-weight": "0", "canary-weight-total": "1000"}, [({}, "stable")] * 20),
]  # fmt: skip
