"""References across namespaces (ReferenceGrant) and what a backendRef or certificateRef resolves to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from graylane.gateway.objects import CORE, GROUP, BackendRef, Key, ObjectRef, ReferenceGrant

BACKEND_NOT_FOUND = "BackendNotFound"
INVALID_KIND = "InvalidKind"
REF_NOT_PERMITTED = "RefNotPermitted"


def permitted(grants: Iterable[ReferenceGrant], *, source: tuple[str, str, str], target: ObjectRef) -> bool:
    """Whether an object (``source``: group, kind, namespace) may refer to ``target`` in another namespace:
    a ReferenceGrant in the target's namespace lists the source in ``from`` and the target in ``to``."""
    if source[2] == target.namespace:
        return True
    for grant in grants:
        if grant.meta.namespace != target.namespace or source not in grant.sources:
            continue
        for group, kind, name in grant.targets:
            if group == target.group and kind == target.kind and name in (None, target.name):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Service:
    """What a backendRef needs of a Service: its ports, and where a connection to each goes.

    A ClusterIP Service is reached at its own port (kube-proxy forwards to an endpoint). A headless one has
    no virtual IP: its DNS name resolves to the endpoints themselves, so the connection must use the port's
    ``targetPort`` (``targets``; a named targetPort keeps the port)."""

    namespace: str
    name: str
    ports: frozenset[int]
    targets: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A backendRef resolved: ``url`` when it can be served, else the ResolvedRefs reason and a message."""

    url: str | None
    key: str | None = None  # the document's upstream name for it: ``<name>.<namespace>.<port>``
    reason: str = ""
    message: str = ""


def resolve_backend(
    backend: BackendRef, *, route_namespace: str, services: Mapping[Key, Service],
    grants: Iterable[ReferenceGrant], path: str,
) -> Resolved:  # fmt: skip
    """A Service backendRef of an HTTPRoute in ``route_namespace``; ``path`` names it in messages."""
    ref = backend.ref
    if ref.group != CORE or ref.kind != "Service":
        return Resolved(
            None, None, INVALID_KIND, f"{path}: {ref.group or 'core'}/{ref.kind} is not a Service"
        )
    if not permitted(grants, source=(GROUP, "HTTPRoute", route_namespace), target=ref):
        message = (
            f"{path}: no ReferenceGrant in {ref.namespace} lets HTTPRoutes of {route_namespace} refer to it"
        )
        return Resolved(None, None, REF_NOT_PERMITTED, message)
    service = services.get((ref.namespace, ref.name))
    if service is None:
        return Resolved(
            None, None, BACKEND_NOT_FOUND, f"{path}: Service {ref.namespace}/{ref.name} not found"
        )
    if backend.port is None or backend.port not in service.ports:
        message = f"{path}.port: Service {ref.namespace}/{ref.name} has no port {backend.port}"
        return Resolved(None, None, BACKEND_NOT_FOUND, message)
    url = f"http://{ref.name}.{ref.namespace}.svc:{service.targets.get(backend.port, backend.port)}"
    return Resolved(url, f"{ref.name}.{ref.namespace}.{backend.port}")
