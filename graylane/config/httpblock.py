"""Schema 2: ``listeners``, ``preserveHost`` and a Gateway API route's ``httpRules`` (:mod:`.loader`).

A document with ``httpRules`` has none of the CanaryRoute keys (``stable``, ``canary``, ``pathPrefix``,
``weight``, ``rules``, ...): the loader's key check already refused them. See docs/gateway-api.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

from graylane.config.fields import FieldChecker, join
from graylane.config.filterblock import BACKEND_FILTERS, parse_filters, parse_timeouts
from graylane.config.jwtblock import parse_jwt
from graylane.config.matchblock import (
    ANY_NAME,
    HEADER_NAME,
    METHOD,
    compile_regex,
    parse_match,
    parse_string_match,
)
from graylane.config.model import (
    MAX_REGEX_LENGTH,
    Backend,
    HttpMatch,
    HttpRule,
    ListenerHosts,
    Match,
    PathKind,
    PathMatch,
    Pin,
    RouteConfig,
    RouteRef,
)
from graylane.config.routeblock import parse_hosts, parse_path, parse_route_ref, valid_host
from graylane.config.stickyblock import parse_sticky
from graylane.config.tlsblock import parse_listener_tls
from graylane.config.upstreamblock import parse_upstreams

RULE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?")
PATH_KINDS: tuple[PathKind, ...] = ("Exact", "PathPrefix", "RegularExpression")
MAX_WEIGHT = 1_000_000
RULE_OPTIONAL = ("name", "filters", "timeouts", "sticky", "pins", "canary")


def parse_listeners(
    c: FieldChecker, top: Mapping[str, Any], hosts: tuple[str, ...]
) -> tuple[ListenerHosts, ...]:
    """``listeners``: the Gateway listener ports this document is served on, each with its own hosts."""
    if "listeners" not in top:
        return ()
    if hosts:
        c.error("hosts", "must be empty when listeners are given (each listener has its hosts)")
    out: list[ListenerHosts] = []
    for i, item in enumerate(c.array(top["listeners"], "listeners", min_len=1, max_len=64)):
        path = join("listeners", i)
        obj = c.obj(item, path, required=("port", "hosts"), optional=("tls", "hostname"))
        if obj is None:
            continue
        port = c.integer(obj.get("port"), join(path, "port"), lo=1, hi=65535)
        names = parse_hosts(c, obj.get("hosts"), join(path, "hosts"))
        tls = parse_listener_tls(c, obj["tls"], join(path, "tls")) if "tls" in obj else ()
        hostname = _listener_hostname(c, obj, join(path, "hostname"))
        if port is not None and any((e.port, e.hostname) == (port, hostname) for e in out):
            c.error(
                join(path, "port"),
                f"duplicate listener port {port}" + (f" hostname {hostname}" * bool(hostname)),
            )
        elif port is not None:
            out.append(ListenerHosts(port=port, hosts=names, tls=tls, hostname=hostname))
    return tuple(out)


def _listener_hostname(c: FieldChecker, obj: Mapping[str, Any], path: str) -> str | None:
    """A listener entry's own ``hostname`` (``*.`` allowed); absent: the port's listener without one."""
    if "hostname" not in obj:
        return None
    host = c.string(obj["hostname"], path, max_len=253)
    if host is not None and not valid_host(host):
        c.error(path, "must be a lower-case DNS name (optionally *.), without port or trailing dot")
        return None
    return host


def parse_http_top(c: FieldChecker, top: Mapping[str, Any]) -> RouteConfig | None:
    """A document with ``httpRules`` (schema 2 only)."""
    route = parse_route_ref(c, top.get("route"), schema2=True)
    hosts = parse_hosts(c, top.get("hosts"))
    listeners = parse_listeners(c, top, hosts)
    upstreams = parse_upstreams(c, top.get("upstreams"), least=0)
    preserve = c.boolean(top.get("preserveHost", False), "preserveHost")
    salt = c.string(top.get("salt"), "salt", max_len=256)
    jwt = parse_jwt(c, top["jwt"]) if top.get("jwt") is not None else None
    rules = []
    seen: set[str] = set()
    if route is not None and route.kind == "Gateway":
        _listeners_only(c, top, listeners)
    elif route is not None and route.kind != "HTTPRoute":
        c.error("route.kind", "must be HTTPRoute (or Gateway) in a document with httpRules")
    for i, item in enumerate(c.array(top.get("httpRules"), "httpRules", max_len=100)):
        rule = _rule(c, item, join("httpRules", i), set(upstreams), has_jwt=jwt is not None)
        if rule is not None and rule.name is not None:
            if rule.name in seen:
                c.error(join(join("httpRules", i), "name"), f"duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        if rule is not None:
            rules.append(rule)
    if c.errors:
        return None
    return RouteConfig(
        schema_version=top["schemaVersion"], route=cast(RouteRef, route), hosts=hosts, path_prefix="/",
        stable="", canary="", upstreams=MappingProxyType(upstreams), rules=(), version_routing=None,
        weight=0.0, salt=cast(str, salt), sticky=None, jwt=jwt, request_headers=MappingProxyType({}),
        checksum=top["checksum"], document=MappingProxyType(dict(top)), listeners=listeners,
        preserve_host=bool(preserve), http_rules=tuple(rules),
    )  # fmt: skip


def _listeners_only(c: FieldChecker, top: Mapping[str, Any], listeners: tuple[ListenerHosts, ...]) -> None:
    """A Gateway's listeners document: its listeners only, so that a request on a listener no route is
    attached to finds that listener (and no route: 404) instead of a less specific listener's routes."""
    if not listeners:
        c.error("listeners", "a Gateway document names its listeners")
    for key in ("httpRules", "upstreams"):
        if top.get(key):
            c.error(key, "must be empty in a Gateway document (routes have their own)")
    if top.get("jwt") is not None:
        c.error("jwt", "must be null in a Gateway document")


def _rule(c: FieldChecker, value: Any, path: str, upstreams: set[str], *, has_jwt: bool) -> HttpRule | None:
    obj = c.obj(value, path, required=("matches", "backends"), optional=RULE_OPTIONAL)
    if obj is None:
        return None
    before = len(c.errors)
    name = None
    if "name" in obj:
        name = c.string(obj["name"], join(path, "name"), max_len=253, pattern=RULE_NAME, what="a rule name")
    matches = tuple(
        m
        for i, item in enumerate(c.array(obj.get("matches"), join(path, "matches"), min_len=1, max_len=64))
        if (m := _match(c, item, join(join(path, "matches"), i))) is not None
    )
    backends = _backends(c, obj.get("backends"), join(path, "backends"), upstreams)
    f = parse_filters(c, obj.get("filters", {}), join(path, "filters"), upstreams=upstreams)
    if f.redirect is not None and backends:
        c.error(join(path, "backends"), "must be empty when the rule redirects")
    timeouts = parse_timeouts(c, obj["timeouts"], join(path, "timeouts")) if "timeouts" in obj else None
    sticky = (
        parse_sticky(c, obj["sticky"], join(path, "sticky"), has_jwt=has_jwt) if "sticky" in obj else None
    )
    pins = _pins(c, obj.get("pins", []), join(path, "pins"), len(backends), has_jwt=has_jwt)
    canary = None
    if "canary" in obj:  # a TrafficPolicy rollout's backend: its requests are labelled track rule-<i>.canary
        canary = c.integer(obj["canary"], join(path, "canary"), lo=0, hi=max(len(backends) - 1, 0))
        if not backends:
            c.error(join(path, "canary"), "the rule has no backends")
    if len(c.errors) != before:
        return None
    return HttpRule(
        name=name, matches=matches, backends=backends, request_headers=f.request_headers, redirect=f.redirect,
        response_headers=f.response_headers, rewrite=f.rewrite, mirrors=f.mirrors, timeouts=timeouts,
        sticky=sticky, pins=pins, canary=canary,
    )  # fmt: skip


def _pins(c: FieldChecker, value: Any, path: str, backends: int, *, has_jwt: bool) -> tuple[Pin, ...]:
    """A TrafficPolicy's pins: CanaryRoute's ``match`` naming one of the rule's backends by index."""
    out: list[Pin] = []
    for i, item in enumerate(c.array(value, path, max_len=64)):
        item_path = join(path, i)
        obj = c.obj(item, item_path, required=("name", "match", "backend"))
        if obj is None:
            continue
        name = c.string(obj.get("name"), join(item_path, "name"), max_len=63, pattern=RULE_NAME,
                        what="a pin name")  # fmt: skip
        match = parse_match(c, obj.get("match"), join(item_path, "match"))
        if match is not None and match.jwt_claims and not has_jwt:
            c.error(join(item_path, "match.jwtClaims"), "claims need the route's jwt settings (jwt is null)")
        backend = c.integer(obj.get("backend"), join(item_path, "backend"), lo=0, hi=max(backends - 1, 0))
        if backends == 0:
            c.error(join(item_path, "backend"), "the rule has no backends to pin to")
        if name is not None and any(p.name == name for p in out):
            c.error(join(item_path, "name"), f"duplicate pin name {name!r}")
        elif name is not None and match is not None and backend is not None:
            out.append(Pin(name=name, match=match, backend=backend))
    return tuple(out)


def _match(c: FieldChecker, value: Any, path: str) -> HttpMatch | None:
    obj = c.obj(value, path, required=("path",), optional=("headers", "query", "method"))
    if obj is None:
        return None
    before = len(c.errors)
    where = _path_match(c, obj.get("path"), join(path, "path"), PATH_KINDS)
    headers = _matchers(c, obj.get("headers", []), join(path, "headers"), HEADER_NAME)
    query = _matchers(c, obj.get("query", []), join(path, "query"), ANY_NAME)
    method = None
    if "method" in obj:
        method = c.string(obj["method"], join(path, "method"), pattern=METHOD, what="an upper-case method")
    if len(c.errors) != before or where is None:
        return None
    conditions = Match(headers=headers, query=query, methods=(method,) if method else ())
    return HttpMatch(path=where, conditions=conditions)


def _path_match(c: FieldChecker, value: Any, path: str, kinds: tuple[str, ...]) -> PathMatch | None:
    obj = c.obj(value, path, required=("type", "value"))
    if obj is None:
        return None
    kind = obj.get("type")
    if kind not in kinds:
        c.error(join(path, "type"), f"must be one of {', '.join(kinds)}")
        return None
    if kind == "RegularExpression":
        text = c.string(obj.get("value"), join(path, "value"), max_len=MAX_REGEX_LENGTH)
        if text is not None:
            try:
                compile_regex(text)
            except Exception as exc:  # re2.error
                c.error(join(path, "value"), f"not a valid RE2 expression: {str(exc)[:200]}")
                return None
    else:
        text = parse_path(c, obj.get("value"), join(path, "value"))
        if text is not None and kind == "PathPrefix":
            text = text.rstrip("/") or "/"
    return None if text is None else PathMatch(kind=cast(PathKind, kind), value=text)


def _matchers(c: FieldChecker, value: Any, path: str, names: re.Pattern[str]) -> tuple[Any, ...]:
    out = []
    for i, item in enumerate(c.array(value, path, max_len=16)):
        parsed = parse_string_match(c, item, join(path, i), name_key="name", name_pattern=names)
        if parsed is not None:
            out.append(parsed)
    return tuple(out)


def _backends(c: FieldChecker, value: Any, path: str, upstreams: set[str]) -> tuple[Backend, ...]:
    out = []
    for i, item in enumerate(c.array(value, path, max_len=16)):
        item_path = join(path, i)
        obj = c.obj(item, item_path, required=("upstream", "weight"), optional=("filters",))
        if obj is None:
            continue
        weight = c.integer(obj.get("weight"), join(item_path, "weight"), lo=0, hi=MAX_WEIGHT)
        upstream = obj.get("upstream")
        f = parse_filters(c, obj.get("filters", {}), join(item_path, "filters"), upstreams=upstreams,
                          keys=BACKEND_FILTERS)  # fmt: skip
        if upstream is not None and upstream not in upstreams:
            c.error(join(item_path, "upstream"), "must be null or name a key of upstreams")
        elif weight is not None:
            out.append(Backend(upstream, weight, f.request_headers, f.response_headers))
    return tuple(out)
