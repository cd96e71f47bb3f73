"""HTTPRoutes parsed into :mod:`graylane.gateway.objects` dataclasses, with the CRD's defaults applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graylane.gateway.objects import (
    CORE,
    GROUP,
    BackendRef,
    Filter,
    HTTPRoute,
    ObjectRef,
    ParentRef,
    RouteMatch,
    RouteRule,
    ValueMatch,
    as_int,
    as_list,
    as_map,
    as_str,
    parse_meta,
)

DEFAULT_MATCH = RouteMatch(ValueMatch("PathPrefix", "", "/"), (), (), None)


def parse_http_route(obj: Mapping[str, Any]) -> HTTPRoute:
    meta = parse_meta(obj)
    spec = as_map(obj.get("spec"))
    parents = tuple(_parent(as_map(p), meta.namespace) for p in as_list(spec.get("parentRefs")))
    hostnames = tuple(h.lower() for h in as_list(spec.get("hostnames")) if isinstance(h, str))
    rules = tuple(_rule(as_map(r), meta.namespace) for r in as_list(spec.get("rules")))
    if "rules" not in spec:  # the CRD's default: one rule matching every path, no backends
        rules = (RouteRule(None, (DEFAULT_MATCH,), (), (), {}),)
    status = tuple(as_map(p) for p in as_list(as_map(obj.get("status")).get("parents")))
    return HTTPRoute(meta, parents, hostnames, rules, status)


def _parent(obj: Mapping[str, Any], namespace: str) -> ParentRef:
    return ParentRef(
        group=as_str(obj.get("group"), GROUP), kind=as_str(obj.get("kind"), "Gateway"),
        namespace=as_str(obj.get("namespace"), namespace), name=as_str(obj.get("name")),
        section_name=as_str(obj.get("sectionName")) or None, port=as_int(obj.get("port")), raw=dict(obj),
    )  # fmt: skip


def _rule(obj: Mapping[str, Any], namespace: str) -> RouteRule:
    matches = tuple(_match(as_map(m)) for m in as_list(obj.get("matches"))) or (DEFAULT_MATCH,)
    filters = tuple(_filter(as_map(f)) for f in as_list(obj.get("filters")))
    backends = tuple(_backend(as_map(b), namespace) for b in as_list(obj.get("backendRefs")))
    name = as_str(obj.get("name")) or None
    mirrors = tuple(
        _backend(as_map(f.spec.get("backendRef")), namespace) for f in filters if f.type == "RequestMirror"
    )
    return RouteRule(name, matches, filters, backends, as_map(obj.get("timeouts")), mirrors)


def _match(obj: Mapping[str, Any]) -> RouteMatch:
    path = as_map(obj.get("path"))
    where = ValueMatch(as_str(path.get("type"), "PathPrefix"), "", as_str(path.get("value"), "/"))
    headers = _values(obj.get("headers"), case_insensitive=True)
    query = _values(obj.get("queryParams"), case_insensitive=False)
    method = as_str(obj.get("method")) or None
    return RouteMatch(where, headers, query, method)


def _values(items: Any, *, case_insensitive: bool) -> tuple[ValueMatch, ...]:
    """Header or query matches; of two with an equivalent name only the first counts (the spec's rule)."""
    out: list[ValueMatch] = []
    seen: set[str] = set()
    for item in map(as_map, as_list(items)):
        name = as_str(item.get("name"))
        key = name.lower() if case_insensitive else name
        if key in seen:
            continue
        seen.add(key)
        out.append(ValueMatch(as_str(item.get("type"), "Exact"), name, as_str(item.get("value"))))
    return tuple(out)


def _filter(obj: Mapping[str, Any]) -> Filter:
    kind = as_str(obj.get("type"))
    key = "urlRewrite" if kind == "URLRewrite" else kind[:1].lower() + kind[1:]  # -> requestHeaderModifier
    return Filter(kind, as_map(obj.get(key)))


def _backend(obj: Mapping[str, Any], namespace: str) -> BackendRef:
    ref = ObjectRef(
        as_str(obj.get("group"), CORE),
        as_str(obj.get("kind"), "Service"),
        as_str(obj.get("namespace"), namespace),
        as_str(obj.get("name")),
    )
    weight = as_int(obj.get("weight"), 1)
    filters = tuple(_filter(as_map(f)) for f in as_list(obj.get("filters")))
    return BackendRef(ref, as_int(obj.get("port")), 1 if weight is None else weight, filters)
