"""Which ``TrafficPolicy`` applies to which HTTPRoute rule, and each policy's GEP-713 ancestor status.

Pure, from the parsed policies, the routes and the Graylane Gateways each route is accepted by:

- a target is an HTTPRoute of the policy's namespace (``sectionName``: one rule, by its ``name``); a route
  that does not exist, has no such rule or is accepted by no Graylane Gateway is ``TargetNotFound``;
- two valid policies on the same target (same route, same ``sectionName`` or both none): the oldest wins
  (``creationTimestamp``, then ``namespace/name``), the other is ``Conflicted``; a rule takes the policy
  naming it, else the one on the whole route (the more specific wins, nothing is merged);
- one ``jwt`` per route (the proxies verify tokens per route): a policy whose ``jwt`` differs from an older
  applied policy's on the same route is ``Conflicted``; so is a second policy with a ``rollout`` on a route
  (the analysis is the route's traffic);
- a pin's ``backendRef`` must name exactly one backendRef of each rule it applies to, else ``Invalid``.

Status: ``status.ancestors`` has one entry per Gateway the target route is accepted by (the target itself
when it is not found), ``controllerName: graylane.io/gateway-controller``, condition ``Accepted``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graylane.gateway import conditions as c
from graylane.gateway.objects import GROUP, HTTPRoute, Key, RouteRule
from graylane.gateway.policy import BackendName, TrafficPolicy

TARGET_NOT_FOUND = "TargetNotFound"
MAX_ANCESTORS = 16


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """What one rule's document gets: ``sticky`` as written, pins as (name, match, backend index)."""

    policy: Key
    sticky: Mapping[str, Any] | None
    pins: tuple[tuple[str, Mapping[str, Any], int], ...]
    canary: tuple[int, float] | None = None  # a rollout's: (backend index, its percent of the rule now)


@dataclass(frozen=True, slots=True)
class RoutePolicies:
    jwt: Mapping[str, Any] | None
    rules: tuple[RulePolicy | None, ...]  # per rule of the route


@dataclass(frozen=True, slots=True)
class Ancestor:
    ref: Mapping[str, Any]
    condition: c.Condition


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    routes: Mapping[Key, RoutePolicies]  # only routes some policy applies to
    statuses: Mapping[Key, tuple[Ancestor, ...]]  # per policy


Verdict = tuple[Key, str | None, c.Condition]  # (route key, section, condition) of one target


def plan_policies(
    policies: Iterable[TrafficPolicy], routes: Mapping[Key, HTTPRoute], gateways: Mapping[Key, Iterable[Key]],
    weights: Mapping[Key, float] | None = None,
) -> PolicyPlan:  # fmt: skip
    """``gateways``: per route key, the Graylane Gateways that accepted it; ``weights``: per policy with a
    rollout, the canary's percent now (absent: the rollout's first step)."""
    ordered = sorted(policies, key=lambda p: p.order)
    verdicts: dict[Key, list[Verdict]] = {}
    claims: dict[tuple[Key, str | None], TrafficPolicy] = {}
    for policy in ordered:
        verdicts[policy.meta.key] = []
        for target in policy.targets:
            route_key = (policy.meta.namespace, target.name)
            cond = _judge(
                policy, target.section, routes.get(route_key), bool(list(gateways.get(route_key, ())))
            )
            if cond.status:
                winner = claims.setdefault((route_key, target.section), policy)
                if winner is not policy:
                    cond = _conflicted(winner, "targets the same", route_key, target.section)
            verdicts[policy.meta.key].append((route_key, target.section, cond))
    jwts = _one_per_route(ordered, verdicts, lambda p: p.jwt, "sets another spec.jwt on")
    _one_per_route(ordered, verdicts, lambda p: p.rollout and p.meta.key, "rolls out a backendRef of")
    applied = {(rk, sec): p for p in ordered for rk, sec, cond in verdicts[p.meta.key] if cond.status}
    out_routes = {key: _route_policies(routes[key], key, applied, jwts.get(key), weights or {})
                  for key in {rk for rk, _ in applied}}  # fmt: skip
    statuses = {p.meta.key: _ancestors(p, verdicts[p.meta.key], gateways) for p in ordered}
    return PolicyPlan(out_routes, statuses)


def _judge(
    policy: TrafficPolicy, section: str | None, route: HTTPRoute | None, attached: bool
) -> c.Condition:
    if policy.problem is not None:
        return c.Condition(c.ACCEPTED, False, c.INVALID, policy.problem)
    if route is None:
        return c.Condition(c.ACCEPTED, False, TARGET_NOT_FOUND, "HTTPRoute not found")
    if not attached:
        return c.Condition(
            c.ACCEPTED, False, TARGET_NOT_FOUND, "the HTTPRoute is accepted by no Graylane Gateway"
        )
    rules = [r for r in route.rules if section is None or r.name == section]
    if not rules:
        return c.Condition(
            c.ACCEPTED, False, TARGET_NOT_FOUND, f"the HTTPRoute has no rule named {section!r}"
        )
    named = [(f"spec.pin[{i}].backendRef", pin.backend) for i, pin in enumerate(policy.pins)]
    if policy.rollout is not None:
        named.append(("spec.rollout.canary", policy.rollout.canary))
    for rule in rules:
        for path, ref in named:
            index = backend_index(rule, ref)
            if isinstance(index, str):
                where = f"rule {rule.name!r}" if rule.name else "a rule"
                message = f"{path}: {index} in {where} of the HTTPRoute"
                return c.Condition(c.ACCEPTED, False, c.INVALID, message)
    return c.ok(c.ACCEPTED)


def backend_index(rule: RouteRule, ref: BackendName) -> int | str:
    """The index of the one backendRef of ``rule`` that ``ref`` names, or why there is none."""
    found = [j for j, b in enumerate(rule.backends)
             if (b.ref.group, b.ref.kind, b.ref.name) == ("", "Service", ref.name)
             and (ref.port is None or b.port == ref.port)]  # fmt: skip
    label = ref.label
    if not found:
        return f"{label} is not a backendRef"
    if len(found) > 1:
        return f"{label} names {len(found)} backendRefs (give name:port)"
    return found[0]


def _conflicted(winner: TrafficPolicy, what: str, route: Key, section: str | None) -> c.Condition:
    target = f"HTTPRoute {route[1]}" + (f" rule {section!r}" if section else "")
    message = f"TrafficPolicy {winner.meta.namespace}/{winner.meta.name} {what} {target} and is older"
    return c.Condition(c.ACCEPTED, False, c.CONFLICTED, message)


def _one_per_route(
    ordered: list[TrafficPolicy], verdicts: Mapping[Key, list[Verdict]],
    setting: Callable[[TrafficPolicy], object], what: str,
) -> dict[Key, TrafficPolicy]:  # fmt: skip
    """Per route, the oldest accepted policy whose ``setting`` is set owns it (the proxies have one ``jwt``
    per route; a rollout's analysis is the route's traffic); a younger one setting another value is
    ``Conflicted`` on that route. Returns the owners."""
    owners: dict[Key, TrafficPolicy] = {}
    for policy in ordered:
        if not setting(policy):
            continue
        found = verdicts[policy.meta.key]
        for i, (route_key, section, cond) in enumerate(found):
            if not cond.status:
                continue
            owner = owners.setdefault(route_key, policy)
            if setting(owner) != setting(policy):
                found[i] = (route_key, section, _conflicted(owner, what, route_key, None))
    return owners


def _route_policies(
    route: HTTPRoute, key: Key, applied: Mapping[tuple[Key, str | None], TrafficPolicy],
    owner: TrafficPolicy | None, weights: Mapping[Key, float],
) -> RoutePolicies:  # fmt: skip
    rules: list[RulePolicy | None] = []
    for rule in route.rules:
        policy = (applied.get((key, rule.name)) if rule.name else None) or applied.get((key, None))
        if policy is None:
            rules.append(None)
            continue
        pins = tuple((p.name, p.match, int(backend_index(rule, p.backend))) for p in policy.pins)
        rollout = policy.rollout
        canary = None
        if rollout is not None:
            percent = weights.get(policy.meta.key, rollout.spec.steps[0].weight)
            canary = (int(backend_index(rule, rollout.canary)), percent)
        rules.append(RulePolicy(policy.meta.key, policy.sticky, pins, canary))
    return RoutePolicies(owner.jwt if owner is not None else None, tuple(rules))


def _ancestors(
    policy: TrafficPolicy, verdicts: list[Verdict], gateways: Mapping[Key, Iterable[Key]]
) -> tuple[Ancestor, ...]:
    """One entry per ancestor; of several targets under one Gateway the first problem is shown. A policy
    without a usable target (only possible past the CRD's schema) is its own ancestor: it says why."""
    if not verdicts:
        ref = {"group": "graylane.io", "kind": "TrafficPolicy", "namespace": policy.meta.namespace,
               "name": policy.meta.name}  # fmt: skip
        return (Ancestor(ref, c.Condition(c.ACCEPTED, False, c.INVALID, policy.problem or "no targetRefs")),)
    found: dict[tuple[Any, ...], Ancestor] = {}
    for route_key, section, cond in verdicts:
        refs = [{"group": GROUP, "kind": "Gateway", "namespace": ns, "name": name}
                for ns, name in sorted(gateways.get(route_key, ()))]  # fmt: skip
        if not refs or cond.reason == TARGET_NOT_FOUND:
            refs = [{"group": GROUP, "kind": "HTTPRoute", "namespace": route_key[0], "name": route_key[1],
                     **({"sectionName": section} if section else {})}]  # fmt: skip
        for ref in refs:
            key = tuple(sorted(ref.items()))
            if key not in found or (found[key].condition.status and not cond.status):
                found[key] = Ancestor(ref, cond)
    return tuple(found[k] for k in sorted(found))[:MAX_ANCESTORS]
