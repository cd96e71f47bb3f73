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
    ours = ((parent.parent, parent.conditions) for parent in parents)
    return {"parents": _entries(route.status_parents, "parentRef", ours, controller=controller,
                                generation=route.meta.generation, now=now)}  # fmt: skip


Ours = Iterable[tuple[Mapping[str, Any], Iterable[c.Condition]]]  # (reference, its conditions)


def _entries(
    current: Iterable[Mapping[str, Any]], ref_name: str, ours: Ours, *, controller: str, generation: int,
    now: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """A status list keyed by (reference, controllerName): other controllers' entries as they are, then one
    per reference of ours, keeping each condition's transition time while unchanged."""
    found = list(current)
    mine = {_ref_key(p.get(ref_name)): p for p in found if p.get("controllerName") == controller}
    out: list[dict[str, Any]] = [dict(p) for p in found if p.get("controllerName") != controller]
    for ref, conditions in ours:
        old = mine.get(_ref_key(ref)) or {}
        out.append({
            ref_name: dict(ref),
            "controllerName": controller,
            "conditions": c.render(conditions, generation=generation, previous=old.get("conditions"),
                                   now=now),
        })  # fmt: skip
    return out


def _ref_key(ref: Any) -> tuple[Any, ...]:
    ref = ref if isinstance(ref, Mapping) else {}
    return (ref.get("group", GROUP), ref.get("kind", "Gateway"), ref.get("namespace"), ref.get("name"),
            ref.get("sectionName"), ref.get("port"))  # fmt: skip


def policy_status(
    policy: TrafficPolicy, ancestors: Iterable[Ancestor], *, controller: str, now: str
) -> dict[str, Any]:
    """``status.ancestors`` (GEP-713): other controllers' entries as they are, then ours."""
    ours = ((ancestor.ref, (ancestor.condition,)) for ancestor in ancestors)
    return {"ancestors": _entries(policy.status_ancestors, "ancestorRef", ours, controller=controller,
                                  generation=policy.meta.generation, now=now)}  # fmt: skip
