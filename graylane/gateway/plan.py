"""Everything the Gateway controller wants, computed purely from one snapshot of the cluster (:class:`World`).

:func:`plan` returns, for Graylane's GatewayClasses, Gateways and the HTTPRoutes attached to them: the
conditions (without generations and times: :func:`graylane.gateway.conditions.render` adds them), each
listener's ``supportedKinds`` and ``attachedRoutes``, the ports each Gateway's proxies serve, and the route
documents per (Gateway, HTTPRoute). Bad input only ever changes the status of the object it is in: a route
that cannot be served gets its conditions and no document; the others are planned as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graylane.gateway import conditions as c
from graylane.gateway import hostnames, naming
from graylane.gateway.attach import Attachment, attach
from graylane.gateway.document import Slot, compile_document, listeners_document, route_problem
from graylane.gateway.listeners import ListenerVerdict, judge_listeners
from graylane.gateway.objects import (
    GROUP,
    BackendRef,
    Gateway,
    GatewayClass,
    HTTPRoute,
    Key,
    ReferenceGrant,
    RouteRule,
)
from graylane.gateway.policy import TrafficPolicy
from graylane.gateway.policyplan import Ancestor, PolicyPlan, RoutePolicies, plan_policies
from graylane.gateway.refs import Resolved, Service, resolve_backend


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the operator observed of a Gateway's provisioned proxies."""

    address: str | None = None  # the Service's ClusterIP
    ready: bool = False  # at least one proxy pod is Ready


@dataclass(frozen=True, slots=True)
class World:
    classes: tuple[GatewayClass, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    routes: tuple[HTTPRoute, ...] = ()
    grants: tuple[ReferenceGrant, ...] = ()
    services: Mapping[Key, Service] = field(default_factory=dict)
    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # name -> labels
    secrets: Mapping[Key, str | None] = field(default_factory=dict)  # TLS problem, None = usable
    runtime: Mapping[Key, Runtime] = field(default_factory=dict)
    policies: tuple[TrafficPolicy, ...] = ()
    rollout_weights: Mapping[Key, float] = field(default_factory=dict)  # canary percent per rolling policy
    controller: str = c.CONTROLLER
    https_served: bool = False
    """Whether the Gateway proxies terminate TLS (the operator's do: ``--listen-tls``, the certificates
    copied next to them); when not, an HTTPS listener is valid and attached to, but its own ``Programmed``
    is False (Pending) -- the Gateway's says its address and proxies are in place."""


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    gateway: Gateway
    conditions: tuple[c.Condition, ...]
    listeners: tuple[ListenerVerdict, ...]
    listener_conditions: Mapping[str, tuple[c.Condition, ...]]
    attached: Mapping[str, int]  # listener name -> attachedRoutes
    ports: Mapping[int, str]  # the Gateway ports its proxies serve -> their protocol ("HTTP", "HTTPS")
    address: str | None
    documents: Mapping[str, dict[str, object]]  # route uid -> sealed document
    listeners_document: Mapping[str, object] | None = None  # the Gateway's listeners (None: no valid one)


@dataclass(frozen=True, slots=True)
class ParentStatus:
    parent: Mapping[str, object]  # the parentRef as the route wrote it
    conditions: tuple[c.Condition, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    classes: Mapping[str, tuple[c.Condition, ...]]
    gateways: Mapping[Key, GatewayPlan]
    routes: Mapping[Key, tuple[ParentStatus, ...]]  # only routes with a parentRef to one of our Gateways
    policies: Mapping[Key, tuple[Ancestor, ...]] = field(default_factory=dict)  # TrafficPolicy ancestors


def plan(world: World) -> Plan:
    ours = {k.meta.name: k for k in world.classes if k.controller == world.controller}
    classes = {name: class_conditions(k) for name, k in ours.items()}
    gateways = {g.meta.key: g for g in world.gateways if g.class_name in ours}
    verdicts = {
        key: judge_listeners(g, grants=world.grants, secrets=world.secrets) for key, g in gateways.items()
    }
    attachments: dict[Key, list[tuple[HTTPRoute, Attachment]]] = {key: [] for key in gateways}
    routes: dict[Key, tuple[ParentStatus, ...]] = {}
    for route in world.routes:
        statuses = _route(route, world, gateways, verdicts, attachments)
        if statuses:
            routes[route.meta.key] = statuses
    policies = _policies(world, attachments)
    plans = {key: _gateway(g, verdicts[key], attachments[key], world, policies)
             for key, g in gateways.items()}  # fmt: skip
    return Plan(classes, plans, routes, policies.statuses)


def _policies(world: World, attachments: Mapping[Key, list[tuple[HTTPRoute, Attachment]]]) -> PolicyPlan:
    accepted: dict[Key, set[Key]] = {}
    for gateway, attached in attachments.items():
        for route, _ in attached:
            accepted.setdefault(route.meta.key, set()).add(gateway)
    routes = {r.meta.key: r for r in world.routes}
    return plan_policies(world.policies, routes, accepted, world.rollout_weights)


def class_conditions(klass: GatewayClass) -> tuple[c.Condition, ...]:
    accepted = c.ok(c.ACCEPTED)
    if klass.has_parameters:
        accepted = c.Condition(
            c.ACCEPTED, False, c.INVALID_PARAMETERS, "spec.parametersRef: Graylane takes none"
        )
    return accepted, c.ok(c.SUPPORTED_VERSION)


def _route(
    route: HTTPRoute, world: World, gateways: Mapping[Key, Gateway],
    verdicts: Mapping[Key, tuple[ListenerVerdict, ...]],
    attachments: dict[Key, list[tuple[HTTPRoute, Attachment]]],
) -> tuple[ParentStatus, ...]:  # fmt: skip
    resolved = _resolve(route, world)
    problem = route_problem(route)
    if problem is None:
        try:  # what the proxy's loader would refuse (a path with "..", a bad header name), with its path
            compile_document(route, listeners={(80, None): hostnames.ANY}, backends=resolved)
        except ValueError as exc:
            problem = str(exc)
    refs = _refs_condition(resolved)
    out = []
    for parent in route.parents:
        gateway = gateways.get((parent.namespace, parent.name))
        if (parent.group, parent.kind) != (GROUP, "Gateway") or gateway is None:
            continue  # not a Gateway of ours: another controller's business
        found = attach(route, parent, gateway, verdicts[gateway.meta.key], namespaces=world.namespaces)
        if found.accepted.status and problem is not None:
            found = Attachment(parent, c.Condition(c.ACCEPTED, False, c.UNSUPPORTED_VALUE, problem))
        if found.accepted.status:
            attachments[gateway.meta.key].append((route, found))
        out.append(ParentStatus(parent.raw, (found.accepted, refs)))
    return tuple(out)


def _resolve(route: HTTPRoute, world: World) -> tuple[tuple[Resolved, ...], ...]:
    return tuple(
        tuple(
            resolve_backend(
                b,
                route_namespace=route.meta.namespace,
                services=world.services,
                grants=world.grants,
                path=path,
            )
            for path, b in _refs(i, rule)
        )
        for i, rule in enumerate(route.rules)
    )


def _refs(i: int, rule: RouteRule) -> list[tuple[str, BackendRef]]:
    """A rule's backendRefs, then its RequestMirror filters' (``compile_document`` splits them again)."""
    out = [(f"spec.rules[{i}].backendRefs[{j}]", b) for j, b in enumerate(rule.backends)]
    mirrors = [j for j, f in enumerate(rule.filters) if f.type == "RequestMirror"]
    out += [(f"spec.rules[{i}].filters[{j}].requestMirror.backendRef", b)
            for j, b in zip(mirrors, rule.mirrors, strict=True)]  # fmt: skip
    return out


def _refs_condition(resolved: tuple[tuple[Resolved, ...], ...]) -> c.Condition:
    problems = [r for rule in resolved for r in rule if r.url is None]
    if not problems:
        return c.ok(c.RESOLVED_REFS)
    message = "; ".join(p.message for p in problems[:3]) + (
        f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    )
    return c.Condition(c.RESOLVED_REFS, False, problems[0].reason, message)


def _gateway(
    gateway: Gateway, verdicts: tuple[ListenerVerdict, ...], attached: list[tuple[HTTPRoute, Attachment]],
    world: World, policies: PolicyPlan,
) -> GatewayPlan:  # fmt: skip
    runtime = world.runtime.get(gateway.meta.key, Runtime())
    counts = {v.listener.name: 0 for v in verdicts}
    for _, found in attached:
        for name in dict.fromkeys(found.names):
            counts[name] += 1
    ports = {v.listener.port: v.listener.protocol for v in verdicts if v.valid}
    documents = _documents(gateway, attached, world, policies.routes)
    slots = [(v.listener.port, v.listener.hostname) for v in verdicts if v.valid]
    listener_conditions = {
        v.listener.name: _listener_conditions(v, runtime, world.https_served) for v in verdicts
    }
    return GatewayPlan(
        gateway=gateway, conditions=gateway_conditions(gateway, verdicts, runtime), listeners=verdicts,
        listener_conditions=listener_conditions, attached=counts, ports=ports, address=runtime.address,
        documents=documents, listeners_document=listeners_document(gateway, slots) if slots else None,
    )  # fmt: skip


def _listener_conditions(verdict: ListenerVerdict, runtime: Runtime, https: bool) -> tuple[c.Condition, ...]:
    programmed = _programmed(verdict.valid, runtime, what="the listener is not valid (see its conditions)",
                             no_address=c.PENDING)  # listeners have no AddressNotAssigned reason  # fmt: skip
    if programmed.status and verdict.listener.protocol == "HTTPS" and not https:
        programmed = c.Condition(c.PROGRAMMED, False, c.PENDING, "these proxies do not terminate TLS")
    return verdict.accepted, verdict.conflicted, verdict.resolved, programmed


def _programmed(
    valid: bool, runtime: Runtime, *, what: str, no_address: str = c.ADDRESS_NOT_ASSIGNED
) -> c.Condition:
    """Programmed: not for what is invalid; then once the Service has an address and a proxy is Ready."""
    if not valid:
        return c.Condition(c.PROGRAMMED, False, c.INVALID, what)
    if runtime.address is None:
        return c.Condition(c.PROGRAMMED, False, no_address, "waiting for the Service's address")
    if not runtime.ready:
        return c.Condition(c.PROGRAMMED, False, c.PENDING, "waiting for a proxy pod to become Ready")
    return c.ok(c.PROGRAMMED)


def gateway_conditions(
    gateway: Gateway, verdicts: tuple[ListenerVerdict, ...], runtime: Runtime
) -> tuple[c.Condition, ...]:
    usable = [v for v in verdicts if v.accepted.status and not v.conflicted.status]
    if gateway.addresses:
        accepted = c.Condition(
            c.ACCEPTED, False, c.UNSUPPORTED_ADDRESS, "spec.addresses: Graylane assigns the address"
        )
    elif gateway.infrastructure.parameters_ref:
        accepted = c.Condition(
            c.ACCEPTED, False, c.INVALID_PARAMETERS, "spec.infrastructure.parametersRef: Graylane takes none"
        )
    elif not usable:
        accepted = c.Condition(c.ACCEPTED, False, c.LISTENERS_NOT_VALID, "no listener is valid")
    elif len(usable) < len(verdicts):
        accepted = c.Condition(c.ACCEPTED, True, c.LISTENERS_NOT_VALID, "some listeners are not valid")
    else:
        accepted = c.ok(c.ACCEPTED)
    valid = accepted.status and any(v.valid for v in verdicts)
    return accepted, _programmed(valid, runtime, what="nothing to program")


def _documents(
    gateway: Gateway, attached: list[tuple[HTTPRoute, Attachment]], world: World,
    policies: Mapping[Key, RoutePolicies],
) -> dict[str, dict[str, object]]:  # fmt: skip
    out: dict[str, dict[str, object]] = {}
    by_route: dict[str, tuple[HTTPRoute, dict[Slot, list[tuple[str, ...]]], dict[Slot, list[Cert]]]] = {}
    for route, found in attached:
        _, slots, certs = by_route.setdefault(route.meta.uid, (route, {}, {}))
        for verdict, names in found.listeners:
            if verdict.valid:
                slot = (verdict.listener.port, verdict.listener.hostname)
                slots.setdefault(slot, []).append(names)
                certs.setdefault(slot, []).extend(_certificate(gateway, verdict))
    for uid, (route, slots, certs) in by_route.items():
        if not slots:
            continue
        listeners = {slot: hostnames.union(served) for slot, served in slots.items()}
        backends = _resolve(route, world)
        for policy in (policies.get(route.meta.key), None):  # a policy the loader refuses is left out
            try:
                out[uid] = compile_document(route, listeners=listeners, backends=backends,
                                            certificates=certs, policies=policy)  # fmt: skip
                break
            except ValueError:  # listener hosts cannot make a valid document invalid: never stop all
                continue
    return out


Cert = tuple[str | None, str]


def _certificate(gateway: Gateway, verdict: ListenerVerdict) -> list[Cert]:
    """An HTTPS listener's certificate for the route documents: (its hostname, the Secret's copy); the first
    usable ``certificateRef`` serves (Graylane offers one certificate per listener)."""
    if verdict.listener.protocol != "HTTPS" or not verdict.certificates:
        return []
    secret = naming.mirror_name(naming.object_name(*gateway.meta.key), verdict.certificates[0])
    return [(verdict.listener.hostname, secret)]
