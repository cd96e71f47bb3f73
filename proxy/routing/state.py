"""The route table the proxy serves and how a new one replaces it.

Sources (files, ConfigMaps) hand raw documents to :class:`RouteState` keyed by where they came from. Each
document is validated whole; a bad one is recorded as rejected (counted, shown at ``/routes``) and the last
good version from the same source keeps serving. Every accepted change builds a new immutable
:class:`ProxyTable` and swaps it in with one assignment: a request reads ``state.table`` once and finishes on
that table, whatever happens meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.proxy.deadlines import Deadlines
from graylane.proxy.metrics import Metrics
from graylane.proxy.routing.jwtclaims import Verifiers
from graylane.proxy.routing.rules import RuleMirror, http_targets
from graylane.proxy.tls.certs import CertStore
from graylane.proxy.upstream.edits import ResponseEdit
from graylane.proxy.upstream.forward import Target
from graylane.proxy.upstream.headers import TrackHeaders
from graylane.proxy.upstream.pool import UpstreamPool

from graylane.config.document import ConfigError, FieldError, RouteConfig, UpstreamSpec, load_route_document
from graylane.jwt.verifier import JwtVerifier
from graylane.routing import decide as core_decide

log = logging.getLogger("graylane.proxy")

TRACKS = ("stable", "canary")


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Everything the hot path needs for one route, compiled when the table is built."""

    config: RouteConfig
    label: str  # "namespace/name"
    targets: Mapping[tuple[str, str], Target]  # (upstream name, track or "rule-<i>") -> Target
    verifier: JwtVerifier | None  # None when the route has no ``jwt``
    redirect_https: bool = False  # ``tls.redirectHTTP``: plain HTTP gets a 308 (when a certificate serves)
    mirrors: Mapping[str, tuple[RuleMirror, ...]] = field(default_factory=dict)  # a Gateway rule's, by track


@dataclass(frozen=True, slots=True)
class ProxyTable:
    core: Any  # graylane.routing.decide.RouteTable
    plans: Mapping[str, RoutePlan]
    serial: int


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


class PoolRegistry:
    """One connection pool per upstream ``scheme://host:port``, kept warm across table swaps."""

    def __init__(self, *, connect_timeout: float, deadlines: Deadlines) -> None:
        self._pools: dict[tuple[str, str, int], UpstreamPool] = {}
        self._connect_timeout = connect_timeout
        self._deadlines = deadlines

    def refresh(self, specs: list[UpstreamSpec]) -> dict[tuple[str, str, int], UpstreamPool]:
        limits: dict[tuple[str, str, int], int] = {}
        for spec in specs:
            where = (str(spec.scheme), spec.host, spec.port)
            limits[where] = max(limits.get(where, 0), spec.max_connections)
        fresh: dict[tuple[str, str, int], UpstreamPool] = {}
        for key, limit in limits.items():
            pool = self._pools.get(key)
            if pool is None:
                pool = UpstreamPool(
                    scheme=key[0],
                    host=key[1],
                    port=key[2],
                    max_connections=limit,
                    connect_timeout=self._connect_timeout,
                    loop=asyncio.get_running_loop(),
                    deadlines=self._deadlines,
                )
            pool.max_connections = limit
            fresh[key] = pool
        for key, pool in self._pools.items():
            if key not in fresh:
                pool.close()
        self._pools = fresh
        return fresh

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools = {}


@dataclass
class RouteState:
    """The served table, the documents behind it and the rejected ones."""

    metrics: Metrics
    pools: PoolRegistry
    verifiers: Verifiers
    countries: Any = None
    underscore_headers: bool = False  # forward client header names with "_" (see headers.TrackHeaders)
    tls: CertStore | None = None  # with an HTTPS listener: the certificates it serves
    table: ProxyTable | None = None
    synced: bool = False
    draining: bool = False
    sources: dict[str, SourceEntry] = field(default_factory=dict)
    _serial: int = 0

    @property
    def ready(self) -> bool:
        return self.synced and self.table is not None and not self.draining

    def apply(self, changes: Mapping[str, bytes | None]) -> bool:
        """Offer new raw documents (``None`` removes a source); rebuild once; True if the table changed."""
        changed = False
        for source, raw in changes.items():
            if raw is None:
                changed |= self.sources.pop(source, None) is not None
            else:
                changed |= self._offer(source, raw)
        if changed:
            return self.rebuild()
        return False

    def _offer(self, source: str, raw: bytes) -> bool:
        entry = self.sources.setdefault(source, SourceEntry())
        digest = raw if len(raw) < 64 else _digest(raw)
        if digest == entry.raw_digest:
            return False
        entry.raw_digest = digest
        try:
            config = load_route_document(raw)
        except ConfigError as exc:
            self._reject(entry, source, exc.reason, exc.errors)
            return False
        old = entry.config
        if old is not None and old.checksum == config.checksum:
            entry.rejection = None
            return False
        if (
            old is not None
            and old.route.uid == config.route.uid
            and config.route.generation < old.route.generation
        ):
            msg = f"generation {config.route.generation} is older than the served {old.route.generation}"
            self._reject(entry, source, "stale-generation", [FieldError("route.generation", msg)])
            return False
        duplicate = next(
            (s for s, e in self.sources.items() if s != source and e.config and e.config.key == config.key),
            None,
        )
        if duplicate is not None:
            msg = f"route {config.key} is already defined by {duplicate}"
            self._reject(entry, source, "duplicate-route", [FieldError("route", msg)])
            return False
        entry.config = config
        entry.rejection = None
        return True

    def _reject(self, entry: SourceEntry, source: str, reason: str, errors: list[FieldError]) -> None:
        entry.rejection = Rejection(source=source, reason=reason, errors=list(errors), at=time.time())
        self.metrics.rejected(reason)
        log.warning("rejected route document %s: %s", source, "; ".join(map(str, errors[:5])))

    def rebuild(self) -> bool:
        configs = [e.config for e in self.sources.values() if e.config is not None]
        try:
            core = core_decide.RouteTable.build(configs, countries=self.countries)
        except ConfigError as exc:  # a conflict between documents: nothing swaps in
            self.metrics.rejected(exc.reason)
            log.warning("route table rejected: %s", exc)
            return False
        pools = self.pools.refresh([spec for c in configs for spec in c.upstreams.values()])
        verifiers = self.verifiers.refresh(configs)
        if self.tls is not None:
            self.tls.refresh(configs)
        plans = {c.key: _plan(c, pools, verifiers.get(c.key), self.underscore_headers) for c in configs}
        self._serial += 1
        self.table = ProxyTable(core=core, plans=plans, serial=self._serial)
        self.metrics.reloads += 1
        self.metrics.generation = {c.key: c.route.generation for c in configs}
        return True


def _plan(
    config: RouteConfig,
    pools: Mapping[tuple[str, str, int], UpstreamPool],
    verifier: JwtVerifier | None,
    underscores: bool,
) -> RoutePlan:
    if config.is_http:

        def make(
            name: str, headers: TrackHeaders, edit: ResponseEdit | None, timeout: float | None
        ) -> Target:
            return _target(config.upstreams[name], pools, headers, response=edit, timeout=timeout)

        rule_targets, mirrors = http_targets(config, make, underscores=underscores)
        return RoutePlan(config=config, label=config.key, targets=rule_targets, verifier=verifier,
                         mirrors=mirrors)  # fmt: skip
    targets: dict[tuple[str, str], Target] = {}
    for track, headers in _header_plans(config, underscores):
        for name, spec in config.upstreams.items():
            targets[(name, track)] = _target(spec, pools, headers)
    if config.mirror is not None:  # the canary's copy: its feature flags, X-Graylane-Track: mirror
        headers = _track_headers(config, "canary", underscores, label="mirror")
        targets[(config.canary, "mirror")] = _target(config.upstreams[config.canary], pools, headers)
    redirect = config.tls is not None and config.tls.redirect_http
    return RoutePlan(
        config=config, label=config.key, targets=targets, verifier=verifier, redirect_https=redirect
    )


def _target(
    spec: UpstreamSpec, pools: Mapping[tuple[str, str, int], UpstreamPool], headers: TrackHeaders,
    *, response: ResponseEdit | None = None, timeout: float | None = None,
) -> Target:  # fmt: skip
    return Target(
        pool=pools[(spec.scheme, spec.host, spec.port)],
        plan=headers,
        base_path=spec.base_path.encode("utf-8"),
        timeout=spec.timeout_seconds if timeout is None else timeout,
        response=response,
    )


def _header_plans(config: RouteConfig, underscores: bool) -> list[tuple[str, TrackHeaders]]:
    """A CanaryRoute's plan per track (a Gateway API document's are ``rules.http_targets``)."""
    return [(track, _track_headers(config, track, underscores, label=track)) for track in TRACKS]


def _track_headers(config: RouteConfig, track: str, underscores: bool, *, label: str) -> TrackHeaders:
    """``track``'s ``requestHeaders`` (its feature flags), sent with ``X-Graylane-Track: <label>``."""
    mutation = config.request_headers.get(track)  # type: ignore[call-overload]
    set_headers = dict(mutation.set) if mutation is not None else {}
    preserve = config.preserve_host
    return TrackHeaders.compile(label, set_headers, underscores=underscores, preserve_host=preserve)


def _digest(raw: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(raw).digest()
