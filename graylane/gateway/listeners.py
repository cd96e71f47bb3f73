"""A Gateway's listeners judged on their own: protocol, port, conflicts, route kinds, certificates.

Graylane serves HTTP on any number of ports per Gateway and HTTPS (TLS terminated by the proxy) on one: the
first port an HTTPS listener names; HTTPS listeners naming another port are ``Accepted=False,
PortUnavailable``. Listeners sharing a port must share its protocol (else
``ProtocolConflict``) and have distinct hostnames (else ``HostnameConflict``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from graylane.gateway import conditions as c
from graylane.gateway.objects import CORE, GROUP, Gateway, Key, Listener, ObjectRef, ReferenceGrant
from graylane.gateway.refs import permitted

PROTOCOLS = ("HTTP", "HTTPS")
HTTP_ROUTE = (GROUP, "HTTPRoute")


@dataclass(frozen=True, slots=True)
class ListenerVerdict:
    listener: Listener
    kinds: tuple[tuple[str, str], ...]  # supportedKinds
    accepted: c.Condition
    conflicted: c.Condition
    resolved: c.Condition
    certificates: tuple[ObjectRef, ...] = ()  # the usable certificateRefs (HTTPS)

    @property
    def valid(self) -> bool:
        """Configurable on the data plane (Programmed once the Gateway's proxies are ready)."""
        return self.accepted.status and not self.conflicted.status and self.resolved.status


def judge_listeners(
    gateway: Gateway, *, grants: Iterable[ReferenceGrant], secrets: Mapping[Key, str | None]
) -> tuple[ListenerVerdict, ...]:
    """``secrets``: each known Secret's TLS problem (None: usable); a missing key: no such Secret."""
    accepted = _accepted(gateway.listeners)
    conflicts = _conflicts([lst for lst in gateway.listeners if accepted[lst.name].status])
    out = []
    for lst in gateway.listeners:
        ok = accepted[lst.name]
        kinds, kinds_problem = _kinds(lst) if ok.status else ((), None)
        https = lst.protocol == "HTTPS" and ok.status
        certs, cert_problem = _certificates(lst, gateway, grants, secrets) if https else ((), None)
        problem = kinds_problem or cert_problem
        resolved = c.ok(c.RESOLVED_REFS) if problem is None else c.Condition(c.RESOLVED_REFS, False, *problem)
        conflicted = conflicts.get(lst.name) or c.Condition(c.CONFLICTED, False, c.NO_CONFLICTS)
        out.append(ListenerVerdict(lst, kinds, ok, conflicted, resolved, certs))
    return tuple(out)


def _accepted(listeners: Iterable[Listener]) -> dict[str, c.Condition]:
    out: dict[str, c.Condition] = {}
    ports: dict[str, int] = {}
    for lst in listeners:
        if lst.protocol not in PROTOCOLS:
            message = f"protocol {lst.protocol!r}: Graylane serves HTTP and HTTPS"
            out[lst.name] = c.Condition(c.ACCEPTED, False, c.UNSUPPORTED_PROTOCOL, message)
        elif lst.protocol == "HTTPS" and lst.tls_mode == "Passthrough":
            message = "tls.mode Passthrough needs TLSRoute, which Graylane does not serve"
            out[lst.name] = c.Condition(c.ACCEPTED, False, c.UNSUPPORTED_VALUE, message)
        elif lst.protocol == "HTTPS" and ports.setdefault(lst.protocol, lst.port) != lst.port:
            first = ports[lst.protocol]
            message = f"port {lst.port}: Graylane serves one HTTPS port per Gateway (here {first})"
            out[lst.name] = c.Condition(c.ACCEPTED, False, c.PORT_UNAVAILABLE, message)
        else:
            out[lst.name] = c.ok(c.ACCEPTED)
    return out


def _conflicts(listeners: list[Listener]) -> dict[str, c.Condition]:
    out: dict[str, c.Condition] = {}
    by_port: dict[int, list[Listener]] = {}
    for lst in listeners:
        by_port.setdefault(lst.port, []).append(lst)
    for port, group in by_port.items():
        if len({lst.protocol for lst in group}) > 1:
            for lst in group:
                message = f"port {port} is used by more than one protocol"
                out[lst.name] = c.Condition(c.CONFLICTED, True, c.PROTOCOL_CONFLICT, message)
            continue
        seen: dict[str | None, list[Listener]] = {}
        for lst in group:
            seen.setdefault(lst.hostname, []).append(lst)
        for hostname, same in seen.items():
            if len(same) > 1:
                for lst in same:
                    message = f"port {port} hostname {hostname or '(any)'} is used by more than one listener"
                    out[lst.name] = c.Condition(c.CONFLICTED, True, c.HOSTNAME_CONFLICT, message)
    return out


def _kinds(lst: Listener) -> tuple[tuple[tuple[str, str], ...], tuple[str, str] | None]:
    if lst.kinds is None:
        return (HTTP_ROUTE,), None
    valid = tuple(dict.fromkeys(k for k in lst.kinds if k == HTTP_ROUTE))
    wrong = [f"{g}/{k}" for g, k in lst.kinds if (g, k) != HTTP_ROUTE]
    if wrong:
        return valid, (c.INVALID_ROUTE_KINDS, f"allowedRoutes.kinds: {', '.join(wrong)} not supported")
    return valid, None


def _certificates(
    lst: Listener, gateway: Gateway, grants: Iterable[ReferenceGrant], secrets: Mapping[Key, str | None]
) -> tuple[tuple[ObjectRef, ...], tuple[str, str] | None]:
    if not lst.certificate_refs:
        return (), (c.INVALID_CERTIFICATE_REF, "tls.certificateRefs: an HTTPS listener needs a certificate")
    usable: list[ObjectRef] = []
    problem: tuple[str, str] | None = None
    for i, ref in enumerate(lst.certificate_refs):
        where = f"tls.certificateRefs[{i}]"
        if (ref.group, ref.kind) != (CORE, "Secret"):
            found = (c.INVALID_CERTIFICATE_REF, f"{where}: {ref.group or 'core'}/{ref.kind} is not a Secret")
        elif not permitted(grants, source=(GROUP, "Gateway", gateway.meta.namespace), target=ref):
            found = (c.REF_NOT_PERMITTED, f"{where}: no ReferenceGrant in {ref.namespace} allows it")
        elif (ref.namespace, ref.name) not in secrets:
            found = (c.INVALID_CERTIFICATE_REF, f"{where}: Secret {ref.namespace}/{ref.name} not found")
        elif (why := secrets[(ref.namespace, ref.name)]) is not None:
            found = (c.INVALID_CERTIFICATE_REF, f"{where}: Secret {ref.namespace}/{ref.name}: {why}")
        else:
            usable.append(ref)
            continue
        problem = problem or found
    return tuple(usable), problem
