"""The frozen model of the import: Ingresses as read, the options, findings and the routes produced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "note"]
DEFAULT_PREFIX = "nginx.ingress.kubernetes.io"
TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool, as ingress-nginx reads
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the user must know: ``error`` (nothing is written), ``warning`` (behaviour not carried
    over; an error with ``--strict``) or ``note`` (no behaviour lost). ``path`` is a field path inside
    ``subject`` (``metadata.annotations[nginx.ingress.kubernetes.io/rewrite-target]``)."""

    severity: Severity
    subject: str
    path: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.subject, self.path) if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True, slots=True)
class Backend:
    service: str
    port: int | str  # a number, or a port name resolved through the Service


@dataclass(frozen=True, slots=True)
class IngressPath:
    host: str  # "" = any host (ingress-nginx's default server)
    path: str
    path_type: str  # Prefix | Exact | ImplementationSpecific
    backend: Backend | None  # None: a resource backend, which Graylane cannot route to
    where: str  # spec.rules[0].http.paths[1]


@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str | None
    where: str  # spec.tls[0]


@dataclass(frozen=True, slots=True)
class Ingress:
    namespace: str
    name: str
    source: str  # "<file> (document 2)" or "cluster"
    annotations: Mapping[str, str]
    ingress_class: str | None
    paths: tuple[IngressPath, ...]
    tls: tuple[IngressTLS, ...]
    default_backend: bool

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def subject(self) -> str:
        return f"Ingress {self.key}"


@dataclass(frozen=True, slots=True)
class ServicePorts:
    """A Service's named ports (to resolve ``backend.service.port.name``)."""

    namespace: str
    name: str
    ports: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    sticky: str | None = None  # one sticky key for every route; None = per-request random, as ingress-nginx
    versions: Mapping[str, str] = field(default_factory=dict)  # "svc" or "ns/svc" -> metadata.version
    ingress_class: str = "nginx"  # Ingresses of another class are skipped (no class: imported)
    annotation_prefix: str = DEFAULT_PREFIX  # ingress-nginx's --annotations-prefix
    default_namespace: str = "default"
    strict: bool = False  # every warning is an error


@dataclass(frozen=True, slots=True)
class ImportedRoute:
    """One output file: the Upstreams and the CanaryRoute, with the lines that explain the mapping."""

    namespace: str
    name: str
    upstreams: tuple[Mapping[str, Any], ...]
    route: Mapping[str, Any]
    explanation: tuple[str, ...]
    origins: tuple[tuple[str, str], ...]  # (subject, spec.rules[i].http.paths[j]) of the Ingress paths used
    findings: tuple[Finding, ...] = ()  # those about this route, its Ingresses and their paths

    @property
    def subject(self) -> str:
        return f"CanaryRoute {self.namespace}/{self.name}"

    def concerns(self, finding: Finding) -> bool:
        """Whether ``finding`` is about this route: itself, or its Ingresses (path findings: its paths)."""
        if finding.subject == self.subject:
            return True
        wheres = [where for subject, where in self.origins if subject == finding.subject]
        if not wheres:
            return False
        return not finding.path.startswith("spec.rules[") or any(
            finding.path == w or finding.path.startswith((w + ".", w + "[")) for w in wheres
        )

    @property
    def filename(self) -> str:
        return f"{self.namespace}.{self.name}.yaml"


@dataclass(frozen=True, slots=True)
class ImportResult:
    routes: tuple[ImportedRoute, ...]
    findings: tuple[Finding, ...]  # every finding, the routes' included, in input order

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def ok(self) -> bool:
        return self.count("error") == 0
