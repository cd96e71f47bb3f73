"""The route table the proxy serves and how one route at a time replaces its previous version.

Sources (files, ConfigMaps) hand raw documents to :class:`RouteState` keyed by where they came from. Each
document is validated whole, on its own: a bad one is recorded as rejected (counted, shown at ``/routes``)
and the last good version from the same source keeps serving; the other routes never notice. An accepted
document swaps in *that route alone*: it is compiled, its plan (upstream pools, JWT verifier, header plans,
mirror target) is built, and both are put into the live :class:`ProxyTable` in one step between requests
(one event loop), so the cost of a change does not grow with the number of routes. A request reads
``state.table`` and its route's plan once and finishes on them, whatever is swapped meanwhile.

Bursts are coalesced by :class:`graylane.proxy.routing.updates.Updates` before they get here.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from graylane.proxy.metrics import Metrics
from graylane.proxy.routing.jwtclaims import Verifier, Verifiers
from graylane.proxy.routing.pools import PoolKey, PoolRegistry
from graylane.proxy.routing.rules import RuleMirror, http_targets
from graylane.proxy.routing.targets import Targets, canary_targets, make_target
from graylane.proxy.routing.updates import Updates
from graylane.proxy.upstream.edits import ResponseEdit
from graylane.proxy.upstream.forward import Target
from graylane.proxy.upstream.headers import TrackHeaders
from graylane.proxy.upstream.pool import UpstreamPool

from graylane.config.document import ConfigError, FieldError, RouteConfig, load_route_document
from graylane.routing.table import RouteTable

if TYPE_CHECKING:  # the TLS stack (cryptography: 16 MiB) is imported only with an HTTPS listener
    from graylane.proxy.tls.certs import CertStore

log = logging.getLogger("graylane.proxy")

NO_MIRRORS: Mapping[str, tuple[RuleMirror, ...]] = MappingProxyType({})  # one for every CanaryRoute

__all__ = ["PoolRegistry", "ProxyTable", "Rejection", "RoutePlan", "RouteState", "SourceEntry", "Targets"]


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Everything the hot path needs for one route, compiled when the route is swapped in."""

    config: RouteConfig
    label: str  # "namespace/name"
    targets: Targets  # (upstream name, track or "rule-<i>") -> Target
    verifier: Verifier | None  # None when the route has no ``jwt``
    redirect_https: bool = False  # ``tls.redirectHTTP``: plain HTTP gets a 308 (when a certificate serves)
    mirrors: Mapping[str, tuple[RuleMirror, ...]] = field(default_factory=lambda: NO_MIRRORS)  # a Gateway
    # rule's, by track


@dataclass(slots=True)
class ProxyTable:
    """The served routes: the core's lookup table and each route's plan, changed one route at a time."""

    core: RouteTable
    plans: dict[str, RoutePlan] = field(default_factory=dict)
    serial: int = 0  # counts applied changes (each may swap several routes)


@dataclass(slots=True)
class Rejection:
    source: str
    reason: str
    errors: list[FieldError]
    at: float
    checksum: str | None = None


@dataclass(slots=True)
class SourceEntry:
    raw_digest: bytes | None = None
    config: RouteConfig | None = None
    rejection: Rejection | None = None


class RouteState:
    """The served table, the documents behind it and the rejected ones."""

    def __init__(
        self, *, metrics: Metrics, pools: PoolRegistry, verifiers: Verifiers, countries: Any = None,
        underscore_headers: bool = False, tls: CertStore | None = None,
    ) -> None:  # fmt: skip
        self.metrics = metrics
        self.pools = pools
        self.verifiers = verifiers
        self.countries = countries
        self.underscore_headers = underscore_headers  # forward client names with "_" (headers.TrackHeaders)
        self.tls = tls  # with an HTTPS listener: the certificates it serves
        self.sources: dict[str, SourceEntry] = {}
        self.draining = False
        self.table: ProxyTable | None = None  # served once synced: before, the data plane answers 503
        self._live = ProxyTable(core=RouteTable(countries=countries))
        self._owners: dict[str, str] = {}  # route key -> the source whose document serves it
        self._tls_routes: dict[str, RouteConfig] = {}  # served routes with ``tls`` or listener certificates
        self._tls_changed = True  # the first sync loads the default certificate, with or without routes
        self._synced = False
        self.on_synced: Callable[[], None] | None = None  # called once, when the first table is complete
        self.updates = Updates(self)  # how sources offer documents while the proxy serves

    @property
    def synced(self) -> bool:
        """True once the source has offered everything it had at start (file scan, first list)."""
        return self._synced

    @synced.setter
    def synced(self, value: bool) -> None:
        first = value and self.table is None
        self._synced = value
        if value:
            self.table = self._live
            self._refresh_tls()
        if first and self.on_synced is not None:
            self.on_synced()

    @property
    def ready(self) -> bool:
        return self._synced and self.table is not None and not self.draining

    def apply(self, changes: Mapping[str, bytes | None]) -> bool:
        """Offer new raw documents (``None`` removes a source), each swapped in alone; True if any changed."""
        changed = False
        for source, raw in changes.items():
            changed |= self._withdraw(source) if raw is None else self._offer(source, raw)
        if self._synced:
            self._refresh_tls()
        if changed:
            self._live.serial += 1
            self.metrics.reloads += 1
        return changed

    def _refresh_tls(self) -> None:
        """The routes with ``tls`` changed: the certificate store loads what they name (not per route)."""
        if self._tls_changed and self.tls is not None:
            self._tls_changed = False
            self.tls.refresh(list(self._tls_routes.values()))

    def _offer(self, source: str, raw: bytes) -> bool:
        entry = self.sources.setdefault(source, SourceEntry())
        digest = raw if len(raw) < 64 else hashlib.sha256(raw).digest()
        if digest == entry.raw_digest:
            return False
        entry.raw_digest = digest
        try:
            config = load_route_document(raw, keep_document=False)  # the proxy never reads it back
        except ConfigError as exc:
            self._reject(entry, source, exc.reason, exc.errors)
            return False
        old = entry.config
        if old is not None and old.checksum == config.checksum:
            entry.rejection = None
            return False
        problem = self._conflict(source, old, config)
        if problem is not None:
            self._reject(entry, source, *problem)
            return False
        try:
            self._install(config, source, old)
        except ConfigError as exc:  # the core refused to compile it: the previous version keeps serving
            self._reject(entry, source, exc.reason, exc.errors)
            return False
        entry.config = config
        entry.rejection = None
        return True

    def _conflict(
        self, source: str, old: RouteConfig | None, config: RouteConfig
    ) -> tuple[str, list[FieldError]] | None:
        if (
            old is not None
            and old.route.uid == config.route.uid
            and config.route.generation < old.route.generation
        ):
            msg = f"generation {config.route.generation} is older than the served {old.route.generation}"
            return "stale-generation", [FieldError("route.generation", msg)]
        owner = self._owners.get(config.key)
        if owner is not None and owner != source:
            return "duplicate-route", [
                FieldError("route", f"route {config.key} is already defined by {owner}")
            ]
        return None

    def _withdraw(self, source: str) -> bool:
        entry = self.sources.pop(source, None)
        if entry is None:
            return False
        if entry.config is not None:
            self._uninstall(entry.config.key, source)
        return True

    def _install(self, config: RouteConfig, source: str, old: RouteConfig | None) -> None:
        """Compile and plan ``config``, then put both in the live table in one step."""
        live = self._live
        compiled = live.core.compile(config)
        if old is not None and old.key != config.key:
            self._uninstall(old.key, source)
        plan = self._plan(config)
        live.core.put(compiled)
        live.plans[config.key] = plan
        self._owners[config.key] = source
        self.metrics.generation[config.key] = config.route.generation
        serves_tls = config.tls is not None or any(entry.tls for entry in config.listeners)
        if serves_tls or config.key in self._tls_routes:
            self._tls_changed = True
            if serves_tls:
                self._tls_routes[config.key] = config
            else:
                del self._tls_routes[config.key]

    def _uninstall(self, key: str, source: str) -> None:
        if self._owners.get(key) != source:
            return
        del self._owners[key]
        self._live.core.remove(key)
        self._live.plans.pop(key, None)
        self.pools.drop(key)
        self.verifiers.forget(key)
        self.metrics.generation.pop(key, None)
        if self._tls_routes.pop(key, None) is not None:
            self._tls_changed = True

    def _reject(self, entry: SourceEntry, source: str, reason: str, errors: list[FieldError]) -> None:
        entry.rejection = Rejection(source=source, reason=reason, errors=list(errors), at=time.time())
        self.metrics.rejected(reason)
        log.warning("rejected route document %s: %s", source, "; ".join(map(str, errors[:5])))

    def rebuild(self) -> bool:
        """Plan again the routes whose JWT verification reads a secret (after a secret changed)."""
        changed = False
        for key, plan in list(self._live.plans.items()):
            jwt = plan.config.jwt
            if jwt is not None and jwt.secret_ref is not None:
                self._live.plans[key] = self._plan(plan.config)
                changed = True
        if changed:
            self._live.serial += 1
            self.metrics.reloads += 1
        return changed

    def _plan(self, config: RouteConfig) -> RoutePlan:
        """``config``'s plan. A CanaryRoute's targets and pools are made on its first request, or now when
        its previous version made them (its pools stay warm)."""
        verifier = self.verifiers.for_route(config)
        if config.is_http:
            pools = self.pools.take(config.key, config.upstreams.values())
            return _http_plan(config, pools, verifier, self.underscore_headers)
        if self.pools.holds(config.key):
            pools = self.pools.take(config.key, config.upstreams.values())
            targets = Targets(*canary_targets(config, pools, self.underscore_headers))
        else:
            targets = Targets.later(self, config)
        redirect = config.tls is not None and config.tls.redirect_http
        return RoutePlan(config=config, label=config.key, targets=targets, verifier=verifier,
                         redirect_https=redirect)  # fmt: skip

    def make_targets(self, targets: Targets, config: RouteConfig) -> None:
        """A CanaryRoute's first request: its targets and pools. A plan no longer served (the route changed
        or left while the request waited) borrows pools without counting them for the route."""
        plan = self._live.plans.get(config.key)
        if plan is not None and plan.targets is targets:
            pools = self.pools.take(config.key, config.upstreams.values())
        else:
            pools = self.pools.borrow(config.upstreams.values())
        targets.fill(*canary_targets(config, pools, self.underscore_headers))


def _http_plan(
    config: RouteConfig, pools: Mapping[PoolKey, UpstreamPool], verifier: Verifier | None, underscores: bool
) -> RoutePlan:
    """A Gateway API document's plan: its rules' targets (made now: their mirrors need them)."""

    def make(name: str, headers: TrackHeaders, edit: ResponseEdit | None, timeout: float | None) -> Target:
        return make_target(config.upstreams[name], pools, headers, response=edit, timeout=timeout)

    rule_targets, mirrors = http_targets(config, make, underscores=underscores)
    extras = tuple((name, track, target) for (name, track), target in rule_targets.items())
    return RoutePlan(config=config, label=config.key, targets=Targets((), (), (), extras),
                     verifier=verifier, mirrors=mirrors)  # fmt: skip
