"""An HTTPRoute attached to a Gateway -> its schema-2 route document (docs/gateway-api.md).

:func:`route_problem` says first whether Graylane can serve the route's rules at all (filters and fields it
does not implement make the route ``Accepted=False, UnsupportedValue`` with the field path);
:func:`compile_document` then builds the document for one Gateway and proves it with the proxy's own loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graylane.config.document import ConfigError, load_route_document, seal
from graylane.gateway.filters import filter_problem, rule_filters, rule_timeouts
from graylane.gateway.objects import BackendRef, Gateway, HTTPRoute, RouteMatch, RouteRule, ValueMatch
from graylane.gateway.policyplan import RoutePolicies, RulePolicy
from graylane.gateway.refs import Resolved

PATH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
VALUE_TYPES = {"Exact": "exact", "RegularExpression": "regex"}
Slot = tuple[int, str | None]  # a Gateway listener: its port and hostname (None: it has none)


def route_problem(route: HTTPRoute) -> str | None:
    """Why Graylane cannot serve ``route`` (a field path and what), or None."""
    for i, rule in enumerate(route.rules):
        path = f"spec.rules[{i}]"
        problem = filter_problem(rule, path)
        if problem is not None:
            return problem
        for j, match in enumerate(rule.matches):
            if match.path.type not in PATH_TYPES:
                return f"{path}.matches[{j}].path.type: {match.path.type} is not supported"
            for kind, values in (("headers", match.headers), ("queryParams", match.query)):
                for k, value in enumerate(values):
                    if value.type not in VALUE_TYPES:
                        return f"{path}.matches[{j}].{kind}[{k}].type: {value.type} is not supported"
    return None


def compile_document(
    route: HTTPRoute,
    *,
    listeners: Mapping[Slot, tuple[str, ...]],
    backends: Sequence[Sequence[Resolved]],
    certificates: Mapping[Slot, Sequence[tuple[str | None, str]]] | None = None,
    policies: RoutePolicies | None = None,
) -> dict[str, Any]:
    """The sealed document of ``route`` on one Gateway: ``listeners`` maps each listener it is attached to
    (port, hostname or None) to the hosts served there, ``backends[i][j]`` is rule i's backendRef j
    resolved, ``certificates`` maps an HTTPS listener to its (hostname or None, Secret copy) pairs,
    ``policies`` is what TrafficPolicies add. Raises
    ``ValueError`` with the route's field paths when the proxy's loader would refuse it."""
    meta = route.meta
    upstreams = {r.key: {"url": r.url} for rule in backends for r in rule if r.key and r.url}
    ref = {"namespace": meta.namespace, "name": meta.name, "uid": meta.uid, "generation": meta.generation,
           "kind": "HTTPRoute"}  # fmt: skip
    if meta.created:
        ref["creationTimestamp"] = meta.created
    doc = {
        "schemaVersion": 2,
        "route": ref,
        "hosts": [],
        "listeners": [_listener(slot, hosts, (certificates or {}).get(slot, ()))
                      for slot, hosts in _by_slot(listeners)],
        "preserveHost": True,
        "upstreams": upstreams,
        "httpRules": [_rule(rule, resolved, extra) for rule, resolved, extra
                      in zip(route.rules, backends, _extras(route, policies), strict=True)],
        "salt": f"{meta.namespace}/{meta.name}",
    }  # fmt: skip
    if policies is not None and policies.jwt is not None:
        doc["jwt"] = dict(policies.jwt)
    sealed = seal(doc)
    try:
        load_route_document(sealed)
    except ConfigError as exc:
        raise ValueError("; ".join(_route_path(e.path) + ": " + e.message for e in exc.errors[:3])) from None
    return sealed


def listeners_document(gateway: Gateway, slots: Iterable[Slot]) -> dict[str, Any]:
    """A Gateway's listeners document (``route.kind: Gateway``, no rules): the proxies know every listener a
    request can belong to, so one no route is attached to answers 404 instead of letting a less specific
    listener's routes answer (``GatewayHTTPListenerIsolation``)."""
    meta = gateway.meta
    ref = {"namespace": meta.namespace, "name": meta.name, "uid": meta.uid, "generation": meta.generation,
           "kind": "Gateway"}  # fmt: skip
    listeners = [_listener(slot, (), ()) for slot, _ in _by_slot(dict.fromkeys(slots, ()))]
    return seal({"schemaVersion": 2, "route": ref, "hosts": [], "listeners": listeners, "upstreams": {},
                 "httpRules": [], "salt": f"{meta.namespace}/{meta.name}"})  # fmt: skip


def _by_slot(listeners: Mapping[Slot, tuple[str, ...]]) -> list[tuple[Slot, tuple[str, ...]]]:
    return sorted(listeners.items(), key=lambda item: (item[0][0], item[0][1] or ""))


def _listener(slot: Slot, hosts: Sequence[str], certs: Sequence[tuple[str | None, str]]) -> dict[str, Any]:
    port, hostname = slot
    out: dict[str, Any] = {"port": port, "hosts": list(hosts)}
    if hostname is not None:
        out["hostname"] = hostname
    if certs:
        out["tls"] = [{"secretName": secret, **({"hostname": host} if host else {})}
                      for host, secret in dict.fromkeys(certs)]  # fmt: skip
    return out


def _extras(route: HTTPRoute, policies: RoutePolicies | None) -> Sequence[RulePolicy | None]:
    return policies.rules if policies is not None else (None,) * len(route.rules)


def _rule(rule: RouteRule, resolved: Sequence[Resolved], extra: RulePolicy | None) -> dict[str, Any]:
    """``resolved``: the rule's backendRefs, then its RequestMirrors' (``plan._refs``); ``extra``: what
    a TrafficPolicy adds (``sticky``, ``pins``)."""
    count = len(rule.backends)
    out: dict[str, Any] = {
        "matches": [_match(m) for m in rule.matches],
        "backends": [_backend(b, r) for b, r in zip(rule.backends, resolved[:count], strict=True)],
    }
    if rule.name is not None:
        out["name"] = rule.name
    filters = rule_filters(rule.filters, resolved[count:])
    if filters:
        out["filters"] = filters
    if rule.timeouts:
        out["timeouts"] = rule_timeouts(rule.timeouts)
    if extra is not None and extra.sticky is not None:
        out["sticky"] = dict(extra.sticky)
    if extra is not None and extra.pins:
        out["pins"] = [{"name": name, "match": dict(match), "backend": j} for name, match, j in extra.pins]
    if extra is not None and extra.canary is not None:
        index, percent = extra.canary
        out["canary"] = index
        weights = rollout_weights([b["weight"] for b in out["backends"]], index, percent)
        for backend, weight in zip(out["backends"], weights, strict=True):
            backend["weight"] = weight
    return out


def rollout_weights(weights: Sequence[int], canary: int, percent: float) -> list[int]:
    """A rule's backend weights while a rollout gives ``weights[canary]`` ``percent`` (two decimals) of it:
    the canary gets ``percent * 100`` of 10,000 and the others share the rest in proportion to their own
    weights (largest remainders; equally when they are all 0). At 0 the weights are the route's own
    without the canary; at 100 the canary alone."""
    share = round(percent * 100)
    others = [j for j in range(len(weights)) if j != canary]
    out = [0] * len(weights)
    out[canary] = share
    rest = 10_000 - share
    if not others or rest == 0:
        return out
    base = [weights[j] for j in others]
    if not any(base):
        base = [1] * len(others)
    total = sum(base)
    exact = [rest * w / total for w in base]
    floors = [int(x) for x in exact]
    order = sorted(range(len(others)), key=lambda k: (floors[k] - exact[k], k))
    for k in order[: rest - sum(floors)]:
        floors[k] += 1
    for j, weight in zip(others, floors, strict=True):
        out[j] = weight
    return out


def _backend(backend: BackendRef, resolved: Resolved) -> dict[str, Any]:
    out: dict[str, Any] = {"upstream": resolved.key, "weight": backend.weight}
    filters = rule_filters(backend.filters)
    if filters:
        out["filters"] = filters
    return out


def _match(match: RouteMatch) -> dict[str, Any]:
    out: dict[str, Any] = {"path": {"type": match.path.type, "value": match.path.value}}
    if match.headers:
        out["headers"] = [_value(v) for v in match.headers]
    if match.query:
        out["query"] = [_value(v) for v in match.query]
    if match.method is not None:
        out["method"] = match.method
    return out


def _value(value: ValueMatch) -> dict[str, str]:
    return {"name": value.name, VALUE_TYPES[value.type]: value.value}


def _route_path(path: str) -> str:
    """A document path (``httpRules[0].matches[1].headers[0].name``) as the route's field path."""
    if not path:
        return "spec"
    return "spec." + path.replace("httpRules", "rules").replace(".query", ".queryParams").replace(
        ".backends", ".backendRefs"
    )
