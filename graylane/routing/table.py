"""The immutable route table: routes compiled once into *entries*, looked up by port, host and precedence.

An entry is one way into a route: a CanaryRoute document gives one (its ``pathPrefix``), a Gateway API
document (``httpRules``) one per rule and match (:mod:`graylane.routing.httprules`). Lookup order: routes
naming the exact host, then wildcard hosts (``*.example.com`` matches any deeper name, the longest suffix
first), then routes with no hosts (any Host); within each tier the first entry whose conditions hold, in the
order of docs/gateway-api.md: an Exact path, then the longest prefix, a method, more header matches, more
query matches, the oldest route, ``namespace/name``, rule and match order. A prefix matches whole segments:
``/api`` matches ``/api`` and ``/api/x``, not ``/apix``. Two CanaryRoutes with the same host and prefix are a
conflict: the one whose ``namespace/name`` sorts first wins, the other is listed in ``RouteTable.conflicts``.

Documents with ``listeners`` are served only on those Gateway listener ports (with each listener's hosts);
documents without are served on every port.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from graylane.config.model import RouteConfig
from graylane.routing.entries import CompiledRoute, CompiledRule, Decision, Entry, compile_route, rank
from graylane.routing.geo import CountryLookup, CountryResolver
from graylane.routing.httprules import http_entries
from graylane.routing.request import CountrySource, RequestView

__all__ = ["CompiledRoute", "CompiledRule", "Decision", "Entry", "HostIndex", "RouteTable", "route_entries"]


def route_entries(route: CompiledRoute, *, countries: CountrySource | None) -> tuple[Entry, ...]:
    """The entries of one compiled route (a CanaryRoute's single prefix entry, or its HTTP rules')."""
    if route.config.is_http:
        return http_entries(route, countries=countries)
    prefix = route.prefix
    return (Entry(route, "PathPrefix", prefix, rank=rank("PathPrefix", prefix, 0, 0, 0, route.config, 0)),)


@dataclass(frozen=True, slots=True)
class HostIndex:
    """The entries served on one port, by host tier."""

    by_host: Mapping[str, tuple[Entry, ...]]  # exact host -> its full candidate list
    wildcard: Mapping[str, tuple[Entry, ...]]  # suffix ".example.com" -> entries
    any_host: tuple[Entry, ...]

    @classmethod
    def build(cls, pairs: Iterable[tuple[Entry, tuple[str, ...]]], conflicts: list[str]) -> HostIndex:
        exact: dict[str, list[Entry]] = {}
        wild: dict[str, list[Entry]] = {}
        anyh: list[Entry] = []
        for entry, hosts in pairs:
            if not hosts:
                anyh.append(entry)
            for host in hosts:
                if host.startswith("*."):
                    wild.setdefault(host[1:], []).append(entry)
                else:
                    exact.setdefault(host, []).append(entry)
        by_host = {h: _ordered(es, f"host {h}", conflicts) for h, es in exact.items()}
        wildcard = {s: _ordered(es, f"host *{s}", conflicts) for s, es in wild.items()}
        any_host = _ordered(anyh, "any host", conflicts)
        for host in by_host:  # precompute the full candidate list of every exact host
            by_host[host] = by_host[host] + _wild_for(wildcard, host) + any_host
        return cls(by_host, wildcard, any_host)

    def candidates(self, host: str) -> tuple[Entry, ...]:
        found = self.by_host.get(host)
        if found is not None:
            return found
        if self.wildcard:
            return _wild_for(self.wildcard, host) + self.any_host
        return self.any_host


@dataclass(frozen=True, slots=True)
class RouteTable:
    """All routes of one proxy. Immutable: a reload builds a new table and swaps the reference."""

    routes: tuple[CompiledRoute, ...]
    index: HostIndex  # the port-less documents (served on any port)
    ports: Mapping[int, HostIndex] = field(default_factory=dict)  # listener port -> its documents + port-less
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
        portless: list[tuple[Entry, tuple[str, ...]]] = []
        by_port: dict[int, list[tuple[Entry, tuple[str, ...]]]] = {}
        for route in compiled:
            entries = route_entries(route, countries=source)
            listeners = route.config.listeners
            for listener in listeners:
                by_port.setdefault(listener.port, []).extend((e, listener.hosts) for e in entries)
            if not listeners:
                portless.extend((e, route.config.hosts) for e in entries)
        conflicts: list[str] = []
        index = HostIndex.build(portless, conflicts)
        ports = {port: HostIndex.build(pairs + portless, []) for port, pairs in sorted(by_port.items())}
        return cls(tuple(compiled), index, ports, tuple(conflicts))

    def match(
        self, host: str, path: str, view: RequestView | None, *, port: int | None = None
    ) -> Entry | None:
        """The entry for a request on ``port`` (None: the port-less documents only); None means 404."""
        index = self.index if port is None else self.ports.get(port, self.index)
        for entry in index.candidates(host):
            if entry.accepts(path, view):
                return entry
        return None

    def lookup(self, host: str, path: str, *, port: int | None = None) -> CompiledRoute | None:
        """The route for ``host`` (lower-case, no port) and ``path`` by path alone (entries with further
        conditions never match here); None means 404."""
        entry = self.match(host, path, None, port=port)
        return None if entry is None else entry.route

    def find(self, key: str) -> CompiledRoute | None:
        """The route named ``namespace/name``."""
        for route in self.routes:
            if route.key == key:
                return route
        return None


def _ordered(entries: list[Entry], where: str, conflicts: list[str]) -> tuple[Entry, ...]:
    ordered = sorted(entries, key=lambda e: e.rank)
    for first, second in itertools.pairwise(ordered):
        both_canary = first.action is None and second.action is None
        if both_canary and first.path == second.path and first.route is not second.route:
            conflicts.append(f"{where} path {first.path}: {second.key} is shadowed by {first.key}")
    return tuple(ordered)


def _wild_for(wildcard: Mapping[str, tuple[Entry, ...]], host: str) -> tuple[Entry, ...]:
    out: tuple[Entry, ...] = ()
    dot = host.find(".")
    while dot >= 0:
        found = wildcard.get(host[dot:])
        if found:
            out += found
        dot = host.find(".", dot + 1)
    return out
