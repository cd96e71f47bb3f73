"""The route table: routes compiled once into *entries*, looked up by port, host and precedence.

An entry is one way into a route: a CanaryRoute document gives one (its ``pathPrefix``), a Gateway API
document (``httpRules``) one per rule and match (:mod:`graylane.routing.httprules`). Lookup order: routes
naming the exact host, then wildcard hosts (``*.example.com`` matches any deeper name, the longest suffix
first), then routes with no hosts (any Host); within each tier the first entry whose conditions hold, in the
order of docs/gateway-api.md: an Exact path, then the longest prefix, a method, more header matches, more
query matches, the oldest route, ``namespace/name``, rule and match order. A prefix matches whole segments:
``/api`` matches ``/api`` and ``/api/x``, not ``/apix``. Two CanaryRoutes with the same host and prefix are a
conflict: the one whose ``namespace/name`` sorts first wins, the other is listed in ``RouteTable.conflicts``.

Documents with ``listeners`` are served only on those Gateway listener ports (with each listener's hosts),
and a request on such a port only sees the routes of its most specific listener
(:mod:`graylane.routing.ports`); documents without are served on every port and listener.

The table changes one route at a time (:meth:`RouteTable.put`, :meth:`RouteTable.remove`): a lookup costs a
few dict probes whatever the number of routes (:mod:`graylane.routing.prefixes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

from graylane.config.model import RouteConfig
from graylane.routing.entries import CompiledRoute, CompiledRule, Decision, Entry, compile_route, rank
from graylane.routing.geo import CountryLookup, CountryResolver
from graylane.routing.hosts import HostIndex
from graylane.routing.httprules import http_entries
from graylane.routing.ports import PortIndex
from graylane.routing.request import CountrySource, RequestView

__all__ = ["CompiledRoute", "CompiledRule", "Decision", "Entry", "HostIndex", "RouteTable", "route_entries"]


def route_entries(route: CompiledRoute, *, countries: CountrySource | None) -> tuple[Entry, ...]:
    """The entries of one compiled route (a CanaryRoute's single prefix entry, or its HTTP rules')."""
    if route.config.is_http:
        return http_entries(route, countries=countries)
    prefix = route.prefix
    return (Entry(route, "PathPrefix", prefix, rank=rank("PathPrefix", prefix, 0, 0, 0, route.config, 0)),)


class RouteTable:
    """All routes of one proxy, indexed for lookup; :meth:`put` and :meth:`remove` change one route alone.

    The proxy changes the table between requests (one event loop): a request that found its entry keeps
    that entry and its route, whatever is put meanwhile. The other routes' compiled objects stay the same.
    """

    __slots__ = ("_entries", "_portless", "_ports", "_routes", "countries")

    def __init__(self, *, countries: CountrySource | CountryLookup | None = None) -> None:
        self.countries = _source(countries)
        self._routes: dict[str, CompiledRoute] = {}
        self._entries: dict[str, tuple[Entry, ...]] = {}  # route key -> its entries
        self._portless = HostIndex()  # documents without listeners: served on every port
        self._ports: dict[int, PortIndex] = {}  # Gateway listener port -> its listeners' indexes

    @classmethod
    def build(
        cls, configs: Iterable[RouteConfig], *, countries: CountrySource | CountryLookup | None = None
    ) -> RouteTable:
        """A table of ``configs``; ``countries``: a ``CountryResolver`` (CDN header + lookup) or a lookup."""
        table = cls(countries=countries)
        for config in configs:
            table.put(table.compile(config))
        return table

    def compile(self, config: RouteConfig) -> CompiledRoute:
        """``config`` compiled for this table (its countries), not yet served."""
        return compile_route(config, countries=self.countries)

    def put(self, route: CompiledRoute) -> CompiledRoute | None:
        """Serve ``route``, replacing the route with its key; returns the replaced one."""
        old = self.remove(route.key)
        entries = route_entries(route, countries=self.countries)
        self._routes[route.key] = route
        self._entries[route.key] = entries
        listeners = route.config.listeners
        for listener in listeners:
            index = self._open_listener(listener.port, listener.hostname)
            self._ports[listener.port].users[listener.hostname].add(route.key)
            for entry in entries:
                index.add(entry, listener.hosts)
        if not listeners:
            for index in self._indexes():
                for entry in entries:
                    index.add(entry, route.config.hosts)
        return old

    def remove(self, key: str) -> CompiledRoute | None:
        """Stop serving the route named ``key``; returns it (None when there was none)."""
        route = self._routes.pop(key, None)
        if route is None:
            return None
        entries = self._entries.pop(key)
        listeners = route.config.listeners
        for listener in listeners:
            port = self._ports[listener.port]
            index, users = port.listener(listener.hostname), port.users[listener.hostname]
            if index is not None:
                for entry in entries:
                    index.remove(entry, listener.hosts)
            users.discard(key)
            if not users:
                port.close(listener.hostname)
            if not port:
                del self._ports[listener.port]
        if not listeners:
            for index in self._indexes():
                for entry in entries:
                    index.remove(entry, route.config.hosts)
        return route

    def _indexes(self) -> Iterator[HostIndex]:
        """Where a port-less document goes: the port-less index and every listener port's."""
        yield self._portless
        for port in self._ports.values():
            yield from port.indexes()

    def _open_listener(self, port: int, hostname: str | None) -> HostIndex:
        """A listener's index; a new one starts with every port-less document."""
        index, new = self._ports.setdefault(port, PortIndex()).open(hostname)
        if not new:
            return index
        for key, entries in self._entries.items():
            config = self._routes[key].config
            if not config.listeners:
                for entry in entries:
                    index.add(entry, config.hosts)
        return index

    def match(
        self, host: str, path: str, view: RequestView | None, *, port: int | None = None
    ) -> Entry | None:
        """The entry for a request on ``port`` (None: the port-less documents only); None means 404."""
        if port is not None and self._ports:
            found = self._ports.get(port)
            if found is not None:
                return found.match(host, path, view)
        return self._portless.match(host, path, view)

    def lookup(self, host: str, path: str, *, port: int | None = None) -> CompiledRoute | None:
        """The route for ``host`` (lower-case, no port) and ``path`` by path alone (entries with further
        conditions never match here); None means 404."""
        entry = self.match(host, path, None, port=port)
        return None if entry is None else entry.route

    def find(self, key: str) -> CompiledRoute | None:
        """The route named ``namespace/name``."""
        return self._routes.get(key)

    def __len__(self) -> int:
        return len(self._routes)

    @property
    def routes(self) -> tuple[CompiledRoute, ...]:
        """Every route, by ``namespace/name``."""
        return tuple(sorted(self._routes.values(), key=lambda r: r.key))

    @property
    def ports(self) -> tuple[int, ...]:
        """The Gateway listener ports that have documents of their own."""
        return tuple(sorted(self._ports))

    @property
    def conflicts(self) -> tuple[str, ...]:
        """Every shadowed CanaryRoute of the port-less documents: ``host h path /p: ns/b is shadowed by
        ns/a`` (the one whose ``namespace/name`` sorts first wins)."""
        return tuple(self._portless.conflicts())


def _source(countries: CountrySource | CountryLookup | None) -> CountrySource | None:
    if isinstance(countries, CountryResolver) or hasattr(countries, "country_of"):
        return cast(CountrySource, countries)
    if countries is not None:
        return CountryResolver(countries)
    return None
