"""The routing decision: which track and upstream one request gets, and why.

Precedence: ``versionRouting`` (its header names a candidate's ``metadata[metadataKey]``) -> ``rules`` in
order (first match wins) -> the sticky weighted split (first present sticky key; without one, the caller's
``sample`` in [0, 1)) -> stable. Weight 0 skips the split: reason ``stable``. Decisions are precomputed per
route, so :func:`decide` allocates nothing.

The proxy either calls :func:`decide` with the table, or finds the entry first (``table.match``, e.g. to
bind the route's JWT verifier into the view's ``claims`` callable) and then calls :func:`decide_entry`. A
Gateway API entry (``httpRules``) picks a weighted backend instead (:mod:`graylane.routing.httprules`).
"""

from __future__ import annotations

from typing import Any

from graylane.routing.httprules import explain_sticky
from graylane.routing.mirror import explain_mirror
from graylane.routing.request import RequestView
from graylane.routing.sticky import BUCKETS, bucket_with_prefix, first_key
from graylane.routing.table import CompiledRoute, CompiledRule, Decision, Entry, RouteTable

__all__ = [
    "CompiledRoute", "CompiledRule", "Decision", "Entry", "RouteTable",
    "decide", "decide_entry", "decide_route", "explain",
]  # fmt: skip


def decide(
    table: RouteTable, view: RequestView, sample: float, *, port: int | None = None
) -> Decision | None:
    """The decision for ``view``; None when no route matches its host and path (a 404)."""
    entry = table.match(view.host, view.path, view, port=port)
    if entry is None:
        return None
    return decide_entry(entry, view, sample)


def decide_entry(entry: Entry, view: RequestView, sample: float) -> Decision:
    """The decision for a request that ``entry`` accepted."""
    action = entry.action
    if action is None:
        return decide_route(entry.route, view, sample)
    return action.decide(view, sample)


def decide_route(route: CompiledRoute, view: RequestView, sample: float) -> Decision:
    """The decision within one route (the hot path: no allocation, each condition evaluated at most once)."""
    header = route.version_header
    if header is not None:
        value = view.headers.get(header)
        if value is not None:
            found = route.version_map.get(value)
            if found is not None:
                return found
    for rule in route.rules:
        for predicate in rule.predicates:
            if not predicate(view):
                break
        else:
            return rule.decision
    threshold = route.threshold
    if threshold == 0:
        return route.stable_decision
    for _, extract in route.sticky_keys:
        key = extract(view)
        if key:
            return route.sticky_decisions[bucket_with_prefix(route.salt_prefix, key) < threshold]
    return route.random_decisions[sample * BUCKETS < threshold]


def explain(
    table: RouteTable, view: RequestView, sample: float, *, port: int | None = None
) -> dict[str, Any]:
    """A JSON-able account of the decision for ``/explain``: route, track, upstream, reason, rules tried."""
    entry = table.match(view.host, view.path, view, port=port)
    if entry is None:
        return {"route": None, "host": view.host, "path": view.path, "reason": "no-route", "status": 404}
    if entry.action is not None:
        return _explain_http(entry, entry.action.decide(view, sample), view)
    route = entry.route
    decision = decide_route(route, view, sample)
    config = route.config
    out: dict[str, Any] = {
        "route": route.key,
        "generation": config.route.generation,
        "checksum": config.checksum,
        "pathPrefix": route.prefix,
        "track": decision.track,
        "upstream": decision.upstream,
        "upstreamURL": config.upstreams[decision.upstream].url,
        "reason": decision.reason,
        "weight": config.weight,
        "versionRouting": _explain_version(route, view),
        "rules": _explain_rules(route, view),
        "sticky": None,
        "mirror": explain_mirror(route.mirror, route.sticky_keys, view, decision.track, sample),
    }
    if decision.reason == "sticky":
        spec, key = first_key(route.sticky_keys, view)
        if key is not None:
            out["sticky"] = {
                "key": spec,
                "bucket": bucket_with_prefix(route.salt_prefix, key),
                "threshold": route.threshold,
            }
    elif decision.reason == "random":
        out["sticky"] = {"key": None, "sample": sample, "threshold": route.threshold}
    return out


def _explain_version(route: CompiledRoute, view: RequestView) -> dict[str, Any] | None:
    if route.version_header is None:
        return None
    value = view.headers.get(route.version_header)
    target = route.version_map.get(value) if value is not None else None
    return {
        "header": route.version_header,
        "present": value is not None,
        "upstream": target.upstream if target is not None else None,
    }


def _explain_rules(route: CompiledRoute, view: RequestView) -> list[dict[str, Any]]:
    tried: list[dict[str, Any]] = []
    for rule in route.rules:
        failed = next((i for i, p in enumerate(rule.predicates) if not p(view)), None)
        tried.append({"name": rule.name, "to": rule.to, "matched": failed is None})
        if failed is None:
            break
    return tried


def _explain_http(entry: Entry, decision: Decision, view: RequestView) -> dict[str, Any]:
    config = entry.route.config
    upstream = config.upstreams.get(decision.upstream)
    out: dict[str, Any] = {
        "route": entry.key,
        "kind": config.route.kind,
        "generation": config.route.generation,
        "checksum": config.checksum,
        "match": {"type": entry.kind, "value": entry.path},
        "track": decision.track,
        "upstream": decision.upstream or None,
        "upstreamURL": upstream.url if upstream is not None else None,
        "reason": decision.reason,
        "status": decision.status or None,
    }
    if decision.reason == "sticky":  # a TrafficPolicy's sticky split: the key and its bucket
        out["sticky"] = explain_sticky(entry.action, view)
    return out
