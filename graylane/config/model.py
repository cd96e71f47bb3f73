"""The frozen model of a compiled route document (docs/route-config.md), its canonical JSON and checksum.

Import these names from :mod:`graylane.config.document`, the public facade.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 2
"""The newest document version this code reads; it reads every version in :data:`SCHEMA_VERSIONS`."""
SCHEMA_VERSIONS = (1, 2)
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_REGEX_LENGTH = 1024

Track = Literal["stable", "canary"]
StringOp = Literal["exact", "prefix", "suffix", "regex", "present", "in"]
STRING_OPS: tuple[StringOp, ...] = ("exact", "prefix", "suffix", "regex", "present", "in")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a document: where (``rules[2].match.headers[0].regex``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<document>'}: {self.message}"


class ConfigError(ValueError):
    """A route document was rejected; ``errors`` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        shown = "; ".join(str(e) for e in self.errors[:10])
        more = f" (+{len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        super().__init__(f"invalid route document: {shown}{more}")

    @property
    def reason(self) -> str:
        """A short, low-cardinality label for ``graylane_config_rejected_total{reason}``."""
        first = self.errors[0].path if self.errors else ""
        if first in ("", "checksum", "schemaVersion"):
            return {"": "malformed", "checksum": "checksum", "schemaVersion": "schema-version"}[first]
        return "invalid"


@dataclass(frozen=True, slots=True)
class RouteRef:
    namespace: str
    name: str
    uid: str
    generation: int
    kind: str = "CanaryRoute"  # schema 2: "HTTPRoute" for a Gateway API route, "Gateway" for its listeners
    created: str = ""  # schema 2: the route's creationTimestamp (precedence: oldest first)
    key: str = field(init=False, compare=False, repr=False)
    """``namespace/name`` — the route's identity in metrics and logs (one string, shared by every user);
    ``gateway:namespace/name`` for a Gateway's listeners document (a route may have the Gateway's name)."""

    def __post_init__(self) -> None:
        key = f"{self.namespace}/{self.name}"
        object.__setattr__(self, "key", sys.intern(f"gateway:{key}" if self.kind == "Gateway" else key))


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    name: str
    url: str
    scheme: Literal["http", "https"]
    host: str  # as in the URL, IPv6 without brackets
    port: int  # explicit or the scheme default
    base_path: str  # "" or a path without a trailing slash, prefixed to the request path
    metadata: Mapping[str, str]
    timeout_seconds: float
    max_connections: int


@dataclass(frozen=True, slots=True)
class StringMatch:
    """One string matcher. ``value`` holds the operand of exact/prefix/suffix/regex, ``values`` of ``in``."""

    op: StringOp
    value: str = ""
    values: tuple[str, ...] = ()
    invert: bool = False
    name: str | None = None  # header/query/cookie name or claim; None for ``path``


@dataclass(frozen=True, slots=True)
class Match:
    headers: tuple[StringMatch, ...] = ()
    query: tuple[StringMatch, ...] = ()
    cookies: tuple[StringMatch, ...] = ()
    jwt_claims: tuple[StringMatch, ...] = ()
    source_cidrs: tuple[str, ...] = ()
    source_countries: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    path: StringMatch | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    to: Track
    match: Match


@dataclass(frozen=True, slots=True)
class VersionRouting:
    header: str
    metadata_key: str
    candidates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StickySettings:
    keys: tuple[str, ...]  # "jwt:<claim>", "header:<Name>", "cookie:<name>", "query:<name>", "sourceIP"


@dataclass(frozen=True, slots=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class JwtSettings:
    issuer: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    leeway_seconds: int
    public_keys: tuple[str, ...]
    jwks_url: str | None
    secret_ref: SecretRef | None


@dataclass(frozen=True, slots=True)
class TlsSettings:
    secret_name: str  # a kubernetes.io/tls Secret in the proxies' namespace (the operator's mirror)
    hosts: tuple[str, ...]  # the SNI names it is offered for: the route's DNS hosts
    redirect_http: bool  # plain HTTP requests for the route get a 308 to https://


@dataclass(frozen=True, slots=True)
class HeaderMutation:
    set: Mapping[str, str] = field(default_factory=dict)


PathKind = Literal["Exact", "PathPrefix", "RegularExpression"]


@dataclass(frozen=True, slots=True)
class PathMatch:
    kind: PathKind
    value: str  # PathPrefix: normalised, "/" or without a trailing slash


@dataclass(frozen=True, slots=True)
class HttpMatch:
    """One entry of an HTTP rule's ``matches`` (schema 2): a path plus the AND of ``conditions``."""

    path: PathMatch
    conditions: Match  # headers, query and methods only


@dataclass(frozen=True, slots=True)
class HeaderFilter:
    set: Mapping[str, str] = field(default_factory=dict)
    add: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Backend:
    upstream: str | None  # None: an invalid backendRef, answered with 500 for its share
    weight: int
    request_headers: HeaderFilter | None = None  # the backendRef's own filters, after the rule's
    response_headers: HeaderFilter | None = None

    @property
    def has_filters(self) -> bool:
        """The backendRef has filters of its own (its own track label and header plans)."""
        return self.request_headers is not None or self.response_headers is not None


@dataclass(frozen=True, slots=True)
class Rewrite:
    """URLRewrite: the Host the upstream gets, and its path (``None``: unchanged)."""

    hostname: str | None
    path: PathMatch | None  # kind "Exact" = ReplaceFullPath, "PathPrefix" = ReplacePrefixMatch


@dataclass(frozen=True, slots=True)
class MirrorTo:
    """RequestMirror: a copy of each request of the rule (``percent`` of them) also goes to ``upstream``."""

    upstream: str
    percent: float


@dataclass(frozen=True, slots=True)
class RuleTimeouts:
    """``timeouts`` of a rule in seconds; 0: none."""

    request: float = 0.0
    backend_request: float = 0.0


@dataclass(frozen=True, slots=True)
class Redirect:
    """RequestRedirect: ``None`` parts keep the request's (the port: the listener's, see the docs)."""

    scheme: str | None
    hostname: str | None
    port: int | None
    path: PathMatch | None  # kind "Exact" = ReplaceFullPath, "PathPrefix" = ReplacePrefixMatch
    status_code: int


@dataclass(frozen=True, slots=True)
class Pin:
    """A TrafficPolicy pin: requests whose ``match`` holds go to ``backends[backend]`` (weights aside)."""

    name: str
    match: Match
    backend: int


@dataclass(frozen=True, slots=True)
class HttpRule:
    name: str | None
    matches: tuple[HttpMatch, ...]
    backends: tuple[Backend, ...]
    request_headers: HeaderFilter | None = None
    redirect: Redirect | None = None
    response_headers: HeaderFilter | None = None
    rewrite: Rewrite | None = None
    mirrors: tuple[MirrorTo, ...] = ()
    timeouts: RuleTimeouts | None = None
    sticky: StickySettings | None = None  # a TrafficPolicy's: the weighted pick becomes a sticky split
    pins: tuple[Pin, ...] = ()  # a TrafficPolicy's, in order, before the split
    canary: int | None = None  # a TrafficPolicy rollout's backend (index): metrics tell it from the others


@dataclass(frozen=True, slots=True)
class ListenerCert:
    """An HTTPS Gateway listener's certificate: a ``kubernetes.io/tls`` Secret of the proxies' namespace
    (the operator's copy) offered to handshakes whose SNI name matches ``hostname``."""

    secret_name: str
    hostname: str | None  # the listener's hostname (``*.`` allowed); None: any name (the port's default)


@dataclass(frozen=True, slots=True)
class ListenerHosts:
    port: int  # the Gateway listener port
    hosts: tuple[str, ...]  # [] = any Host
    tls: tuple[ListenerCert, ...] = ()  # HTTPS listeners of this port the route is attached to
    hostname: str | None = None  # the listener's own hostname: a request goes to its most specific listener


@dataclass(frozen=True, slots=True)
class MirrorCompare:
    """What a mirrored pair is compared on besides the status code (``mirror.compare``)."""

    body: bool = False  # the first ``max_body_bytes`` of both bodies, and the response headers
    ignore_headers: frozenset[str] = frozenset()  # lower-case names left out of the header comparison


@dataclass(frozen=True, slots=True)
class MirrorSettings:
    """``mirror``: a share of the requests routed to stable is also sent to the canary (shadow traffic)."""

    percent: float
    methods: tuple[str, ...] = ()  # () = every method
    max_body_bytes: int = 65536
    compare: MirrorCompare = field(default_factory=MirrorCompare)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    schema_version: int
    route: RouteRef
    hosts: tuple[str, ...]
    path_prefix: str
    stable: str
    canary: str
    upstreams: Mapping[str, UpstreamSpec]
    rules: tuple[Rule, ...]
    version_routing: VersionRouting | None
    weight: float
    salt: str
    sticky: StickySettings | None
    jwt: JwtSettings | None
    request_headers: Mapping[Track, HeaderMutation]
    checksum: str
    document: Mapping[str, Any] = field(compare=False, repr=False, hash=False)
    mirror: MirrorSettings | None = None
    listeners: tuple[ListenerHosts, ...] = ()  # schema 2: served only on these Gateway listener ports
    preserve_host: bool = False  # schema 2: the upstream gets the client's Host
    http_rules: tuple[HttpRule, ...] = ()  # schema 2: instead of stable/canary/pathPrefix/weight/rules
    tls: TlsSettings | None = None

    @property
    def is_http(self) -> bool:
        """A Gateway API document (``httpRules``, none for a Gateway's listeners), not a CanaryRoute's."""
        return self.route.kind != "CanaryRoute"

    @property
    def key(self) -> str:
        return self.route.key


def canonical_json(doc: Mapping[str, Any]) -> str:
    """The one serialisation of a route document: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def document_checksum(doc: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``doc`` without its ``checksum`` key."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``doc`` with its ``checksum`` set (any old checksum is replaced)."""
    sealed = {k: v for k, v in doc.items() if k != "checksum"}
    sealed["checksum"] = document_checksum(sealed)
    return sealed
