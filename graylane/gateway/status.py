"""The status documents the Gateway controller writes, rendered from a :class:`~graylane.gateway.plan.Plan`.

Each function returns the whole status the controller owns for one object; the operator compares it with
what is there and patches only differences. Conditions keep their ``lastTransitionTime`` while unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graylane.gateway import conditions as c
from graylane.gateway import features
from graylane.gateway.objects import GROUP, GatewayClass, HTTPRoute
from graylane.gateway.plan import GatewayPlan, ParentStatus
from graylane.gateway.policy import TrafficPolicy
from graylane.gateway.policyplan import Ancestor


def class_status(
    klass: GatewayClass, conds: Iterable[c.Condition], *, bundle_version: str | None, now: str,
    previous: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    fixed = []
    for cond in conds:
        if cond.type == c.SUPPORTED_VERSION and not features.version_supported(bundle_version):
            message = f"installed Gateway API CRDs are {bundle_version or 'unknown'}; Graylane reads v1.6"
            cond = c.Condition(c.SUPPORTED_VERSION, False, c.UNSUPPORTED_VERSION, message)
        fixed.append(cond)
    rendered = c.render(fixed, generation=klass.meta.generation, previous=previous.get("conditions"), now=now)
    return {"conditions": rendered, "supportedFeatures": features.supported_features()}


def gateway_status(planned: GatewayPlan, *, now: str, previous: Mapping[str, Any]) -> dict[str, Any]:
    gen = planned.gateway.meta.generation
    before = {
        item.get("name"): item.get("conditions")
        for item in previous.get("listeners") or []
        if isinstance(item, Mapping)
    }
    listeners = [
        {
            "name": v.listener.name,
            "supportedKinds": [{"group": group, "kind": kind} for group, kind in v.kinds],
            "attachedRoutes": planned.attached.get(v.listener.name, 0),
            "conditions": c.render(
                planned.listener_conditions[v.listener.name],
                generation=gen,
                previous=before.get(v.listener.name),
                now=now,
            ),
        }
        for v in planned.listeners
    ]
    addresses = [{"type": "IPAddress", "value": planned.address}] if planned.address else []
    conditions = c.render(planned.conditions, generation=gen, previous=previous.get("conditions"), now=now)
    return {"addresses": addresses, "conditions": conditions, "listeners": listeners}


def route_status(
    route: HTTPRoute, parents: Iterable[ParentStatus], *, controller: str, now: str
) -> dict[str, Any]:
    """``status.parents``: other controllers' entries as they are, then one entry per parentRef of ours."""
    current = list(route.status_parents)
    others = [p for p in current if p.get("controllerName") != controller]
    mine = {_ref_key(p.get("parentRef")): p for p in current if p.get("controllerName") == controller}
    out = list(others)
    for parent in parents:
        old = mine.get(_ref_key(parent.parent)) or {}
        out.append({
            "parentRef": dict(parent.parent),
            "controllerName": controller,
            "conditions": c.render(parent.conditions, generation=route.meta.generation,
                                   previous=old.get("conditions"), now=now),
        })  # fmt: skip
    return {"parents": out}


def _ref_key(ref: Any) -> tuple[Any, ...]:
    ref = ref if isinstance(ref, Mapping) else {}
    return (ref.get("group", GROUP), ref.get("kind", "Gateway"), ref.get("namespace"), ref.get("name"),
            ref.get("sectionName"), ref.get("port"))  # fmt: skip


def policy_status(
    policy: TrafficPolicy, ancestors: Iterable[Ancestor], *, controller: str, now: str
) -> dict[str, Any]:
    """``status.ancestors`` (GEP-713): other controllers' entries as they are, then ours."""
    others = [a for a in policy.status_ancestors if a.get("controllerName") != controller]
    mine = {_policy_ref_key(a.get("ancestorRef")): a for a in policy.status_ancestors
            if a.get("controllerName") == controller}  # fmt: skip
    out = list(others)
    for ancestor in ancestors:
        old = mine.get(_policy_ref_key(ancestor.ref)) or {}
        out.append({
            "ancestorRef": dict(ancestor.ref),
            "controllerName": controller,
            "conditions": c.render((ancestor.condition,), generation=policy.meta.generation,
                                   previous=old.get("conditions"), now=now),
        })  # fmt: skip
    return {"ancestors": out}


def _policy_ref_key(ref: Any) -> tuple[Any, ...]:
    ref = ref if isinstance(ref, Mapping) else {}
    return tuple(ref.get(k) for k in ("group", "kind", "namespace", "name", "sectionName"))
