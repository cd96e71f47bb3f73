"""The immutable route table: routes compiled once, looked up by host and longest path prefix.

Lookup order: routes naming the exact host, then wildcard hosts (``*.example.com`` matches any deeper name,
the longest suffix first), then routes with no hosts (any Host); within each tier the longest path prefix
wins. A prefix matches whole segments: ``/api`` matches ``/api`` and ``/api/x``, not ``/apix``. Two routes
with the same host and prefix are a conflict: the one whose ``namespace/name`` sorts first wins, the other is
listed in ``RouteTable.conflicts``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from graylane.config.model import RouteConfig, Track
from graylane.routing import matchers, sticky
from graylane.routing.geo import CountryLookup, CountryResolver
from graylane.routing.mirror import MirrorPlan
from graylane.routing.request import CountrySource

Reason = str  # "version-header" | "rule:<name>" | "sticky" | "random" | "fallback" | "stable"


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """Where one request goes. Decisions are precomputed per route; compare them by value of the fields."""

    route: CompiledRoute
    track: Literal["stable", "canary"]
    upstream: str
    reason: Reason


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    name: str
    to: Track
    predicates: tuple[matchers.Predicate, ...]
    decision: Decision


@dataclass(eq=False, slots=True)
class CompiledRoute:
    """One route ready for the hot path. Built by :meth:`RouteTable.build`; treat as read-only."""

    config: RouteConfig
    key: str
    prefix: str  # normalised: "/" or without trailing slash
    rules: tuple[CompiledRule, ...] = ()
    version_header: str | None = None  # lower-case
    version_map: Mapping[str, Decision] = field(default_factory=dict)
    sticky_keys: tuple[tuple[str, sticky.KeyExtractor], ...] = ()
    threshold: int = 0  # canary buckets: round(weight * 100)
    salt_prefix: bytes = b""
    mirror: MirrorPlan | None = None  # shadow traffic (``mirror.py``); None: nothing is mirrored
    # Set by compile_route right after construction (a Decision refers to its route):
    stable_decision: Decision = field(init=False)
    sticky_decisions: tuple[Decision, Decision] = field(init=False)  # (stable, canary)
    random_decisions: tuple[Decision, Decision] = field(init=False)

    def matches_path(self, path: str) -> bool:
        prefix = self.prefix
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    def decision_for(self, track: Track, reason: Reason) -> Decision:
        """A decision for ``track`` with any reason (e.g. "fallback" when the proxy retries on stable)."""
        upstream = self.config.canary if track == "canary" else self.config.stable
        return Decision(route=self, track=track, upstream=upstream, reason=reason)


def compile_route(config: RouteConfig, *, countries: CountrySource | None = None) -> CompiledRoute:
    prefix = config.path_prefix.rstrip("/") or "/"
    route = CompiledRoute(config=config, key=config.route.key, prefix=prefix)
    route.stable_decision = route.decision_for("stable", "stable")
    route.sticky_decisions = (route.decision_for("stable", "sticky"), route.decision_for("canary", "sticky"))
    route.random_decisions = (route.decision_for("stable", "random"), route.decision_for("canary", "random"))
    route.rules = tuple(
        CompiledRule(
            name=rule.name,
            to=rule.to,
            predicates=matchers.compile_match(rule.match, countries=countries),
            decision=route.decision_for(rule.to, f"rule:{rule.name}"),
        )
        for rule in config.rules
    )
    vr = config.version_routing
    if vr is not None:
        route.version_header = vr.header.lower()
        route.version_map = _version_map(route, config, vr.metadata_key, vr.candidates)
    if config.sticky is not None:
        route.sticky_keys = sticky.compile_keys(config.sticky.keys)
    route.threshold = sticky.threshold(config.weight)
    route.salt_prefix = sticky.salt_prefix(config.salt)
    if config.mirror is not None:
        route.mirror = MirrorPlan.compile(config.mirror, config.salt)
    return route


def _version_map(
    route: CompiledRoute, config: RouteConfig, key: str, candidates: Iterable[str]
) -> dict[str, Decision]:
    out: dict[str, Decision] = {}
    for name in candidates:
        tag = config.upstreams[name].metadata.get(key)
        if tag is not None:
            track: Track = "stable" if name == config.stable else "canary"
            out[tag] = Decision(route=route, track=track, upstream=name, reason="version-header")
    return out


@dataclass(frozen=True, slots=True)
class RouteTable:
    """All routes of one proxy. Immutable: a reload builds a new table and swaps the reference."""

    routes: tuple[CompiledRoute, ...]
    by_host: Mapping[str, tuple[CompiledRoute, ...]]
    wildcard: Mapping[str, tuple[CompiledRoute, ...]]  # suffix ".example.com" -> routes
    any_host: tuple[CompiledRoute, ...]
    conflicts: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, configs: Iterable[RouteConfig], *, countries: CountrySource | CountryLookup | None = None
    ) -> RouteTable:
        """Compile ``configs``; ``countries`` is a ``CountryResolver`` (CDN header + lookup) or a lookup."""
        source: CountrySource | None = None
        if isinstance(countries, CountryResolver) or hasattr(countries, "country_of"):
            source = cast(CountrySource, countries)
        elif countries is not None:
            source = CountryResolver(countries)
        compiled = sorted((compile_route(c, countries=source) for c in configs), key=lambda r: r.key)
        exact: dict[str, list[CompiledRoute]] = {}
        wild: dict[str, list[CompiledRoute]] = {}
        anyh: list[CompiledRoute] = []
        for route in compiled:
            if not route.config.hosts:
                anyh.append(route)
            for host in route.config.hosts:
                if host.startswith("*."):
                    wild.setdefault(host[1:], []).append(route)
                else:
                    exact.setdefault(host, []).append(route)
        conflicts: list[str] = []
        by_host = {h: _ordered(rs, f"host {h}", conflicts) for h, rs in exact.items()}
        wildcard = {s: _ordered(rs, f"host *{s}", conflicts) for s, rs in wild.items()}
        any_host = _ordered(anyh, "any host", conflicts)
        for host in by_host:  # precompute the full candidate list of every exact host
            by_host[host] = by_host[host] + _wild_for(wildcard, host) + any_host
        return cls(tuple(compiled), by_host, wildcard, any_host, tuple(conflicts))

    def candidates(self, host: str) -> tuple[CompiledRoute, ...]:
        found = self.by_host.get(host)
        if found is not None:
            return found
        if self.wildcard:
            return _wild_for(self.wildcard, host) + self.any_host
        return self.any_host

    def lookup(self, host: str, path: str) -> CompiledRoute | None:
        """The route for ``host`` (lower-case, no port) and ``path``; None means 404."""
        for route in self.candidates(host):
            if route.matches_path(path):
                return route
        return None

    def find(self, key: str) -> CompiledRoute | None:
        """The route named ``namespace/name``."""
        for route in self.routes:
            if route.key == key:
                return route
        return None


def _ordered(routes: list[CompiledRoute], where: str, conflicts: list[str]) -> tuple[CompiledRoute, ...]:
    ordered = sorted(routes, key=lambda r: (-len(r.prefix), r.key))
    for first, second in itertools.pairwise(ordered):
        if first.prefix == second.prefix:
            conflicts.append(f"{where} path {first.prefix}: {second.key} is shadowed by {first.key}")
    return tuple(ordered)


def _wild_for(wildcard: Mapping[str, tuple[CompiledRoute, ...]], host: str) -> tuple[CompiledRoute, ...]:
    out: tuple[CompiledRoute, ...] = ()
    dot = host.find(".")
    while dot >= 0:
        found = wildcard.get(host[dot:])
        if found:
            out += found
        dot = host.find(".", dot + 1)
    return out
