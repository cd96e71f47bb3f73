"""Gateway API objects (as the API server returns them, as plain dicts) parsed into frozen dataclasses.

The API server has validated them against the CRDs and applied their defaults; parsing applies the same
defaults again and never raises, so an object of any shape (an older CRD, a test) cannot crash the operator.
Only the fields Graylane reads are kept. Names follow the API (``section_name`` for ``sectionName``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP = "gateway.networking.k8s.io"
CORE = ""  # the group of Services and Secrets

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class Meta:
    namespace: str
    name: str
    uid: str
    generation: int
    created: str  # creationTimestamp
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    @property
    def key(self) -> Key:
        return self.namespace, self.name


@dataclass(frozen=True, slots=True)
class GatewayClass:
    meta: Meta
    controller: str
    has_parameters: bool


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A reference with group, kind, namespace (resolved: never empty) and name."""

    group: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    port: int
    protocol: str
    hostname: str | None
    namespaces_from: str  # Same | All | Selector | None
    namespace_selector: Mapping[str, Any] | None
    kinds: tuple[tuple[str, str], ...] | None  # (group, kind); None: the protocol's default kinds
    tls_mode: str | None  # Terminate | Passthrough; None without tls
    certificate_refs: tuple[ObjectRef, ...]


@dataclass(frozen=True, slots=True)
class Infrastructure:
    """``spec.infrastructure``: labels and annotations for every object provisioned for the Gateway, and
    whether a ``parametersRef`` is given (Graylane takes none)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    parameters_ref: bool = False


@dataclass(frozen=True, slots=True)
class Gateway:
    meta: Meta
    class_name: str
    listeners: tuple[Listener, ...]
    addresses: tuple[Mapping[str, Any], ...]  # spec.addresses (Graylane assigns its own)
    infrastructure: Infrastructure = field(default_factory=Infrastructure)


@dataclass(frozen=True, slots=True)
class ParentRef:
    group: str
    kind: str
    namespace: str
    name: str
    section_name: str | None
    port: int | None
    raw: Mapping[str, Any]  # as written in the route: status echoes it back unchanged


@dataclass(frozen=True, slots=True)
class ValueMatch:
    type: str  # Exact | RegularExpression (| PathPrefix for paths)
    name: str  # header/query name; "" for a path
    value: str


@dataclass(frozen=True, slots=True)
class RouteMatch:
    path: ValueMatch
    headers: tuple[ValueMatch, ...]
    query: tuple[ValueMatch, ...]
    method: str | None


@dataclass(frozen=True, slots=True)
class Filter:
    type: str
    spec: Mapping[str, Any]  # the filter's own block (requestHeaderModifier, requestRedirect, ...)


@dataclass(frozen=True, slots=True)
class BackendRef:
    ref: ObjectRef
    port: int | None
    weight: int
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class RouteRule:
    name: str | None
    matches: tuple[RouteMatch, ...]
    filters: tuple[Filter, ...]
    backends: tuple[BackendRef, ...]
    timeouts: Mapping[str, Any]  # the rule's ``timeouts`` block ({}: none)
    mirrors: tuple[BackendRef, ...] = ()  # the backendRefs of its RequestMirror filters, in order


@dataclass(frozen=True, slots=True)
class HTTPRoute:
    meta: Meta
    parents: tuple[ParentRef, ...]
    hostnames: tuple[str, ...]
    rules: tuple[RouteRule, ...]
    status_parents: tuple[Mapping[str, Any], ...]  # status.parents as found (other controllers' are kept)


@dataclass(frozen=True, slots=True)
class ReferenceGrant:
    meta: Meta
    sources: tuple[tuple[str, str, str], ...]  # from: (group, kind, namespace)
    targets: tuple[tuple[str, str, str | None], ...]  # to: (group, kind, name or None = any)


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def as_strings(value: Any) -> dict[str, str]:
    """A map of strings (labels, annotations): any other value is an empty map, keys and values as text."""
    return {str(k): str(v) for k, v in as_map(value).items()}


def as_int(value: Any, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_meta(obj: Mapping[str, Any]) -> Meta:
    meta = as_map(obj.get("metadata"))
    labels, annotations = as_strings(meta.get("labels")), as_strings(meta.get("annotations"))
    return Meta(
        namespace=as_str(meta.get("namespace")), name=as_str(meta.get("name")), uid=as_str(meta.get("uid")),
        generation=as_int(meta.get("generation"), 0) or 0, created=as_str(meta.get("creationTimestamp")),
        labels=labels, annotations=annotations,
    )  # fmt: skip


def parse_gateway_class(obj: Mapping[str, Any]) -> GatewayClass:
    spec = as_map(obj.get("spec"))
    return GatewayClass(
        parse_meta(obj), as_str(spec.get("controllerName")), spec.get("parametersRef") is not None
    )


def parse_gateway(obj: Mapping[str, Any]) -> Gateway:
    meta = parse_meta(obj)
    spec = as_map(obj.get("spec"))
    listeners = tuple(_listener(as_map(item), meta.namespace) for item in as_list(spec.get("listeners")))
    addresses = tuple(as_map(a) for a in as_list(spec.get("addresses")))
    infra = as_map(spec.get("infrastructure"))
    infrastructure = Infrastructure(
        labels=as_strings(infra.get("labels")), annotations=as_strings(infra.get("annotations")),
        parameters_ref=infra.get("parametersRef") is not None,
    )  # fmt: skip
    return Gateway(meta, as_str(spec.get("gatewayClassName")), listeners, addresses, infrastructure)


def _listener(obj: Mapping[str, Any], namespace: str) -> Listener:
    allowed = as_map(obj.get("allowedRoutes"))
    spaces = as_map(allowed.get("namespaces"))
    kinds = allowed.get("kinds")
    tls = obj.get("tls")
    refs = tuple(
        ObjectRef(
            as_str(r.get("group"), CORE),
            as_str(r.get("kind"), "Secret"),
            as_str(r.get("namespace"), namespace),
            as_str(r.get("name")),
        )
        for r in map(as_map, as_list(as_map(tls).get("certificateRefs")))
    )
    return Listener(
        name=as_str(obj.get("name")), port=as_int(obj.get("port"), 0) or 0,
        protocol=as_str(obj.get("protocol")),
        hostname=as_str(obj.get("hostname")) or None, namespaces_from=as_str(spaces.get("from"), "Same"),
        namespace_selector=as_map(spaces.get("selector")) if "selector" in spaces else None,
        kinds=None if kinds is None else tuple(
            (as_str(as_map(k).get("group"), GROUP), as_str(as_map(k).get("kind"))) for k in as_list(kinds)
        ),
        tls_mode=as_str(as_map(tls).get("mode"), "Terminate") if isinstance(tls, Mapping) else None,
        certificate_refs=refs,
    )  # fmt: skip


def parse_reference_grant(obj: Mapping[str, Any]) -> ReferenceGrant:
    spec = as_map(obj.get("spec"))
    sources = tuple(
        (as_str(f.get("group")), as_str(f.get("kind")), as_str(f.get("namespace")))
        for f in map(as_map, as_list(spec.get("from")))
    )
    targets = tuple(
        (as_str(t.get("group")), as_str(t.get("kind")), as_str(t.get("name")) or None)
        for t in map(as_map, as_list(spec.get("to")))
    )
    return ReferenceGrant(parse_meta(obj), sources, targets)
