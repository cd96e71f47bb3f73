"""One Gateway port's entries, isolated per listener (Gateway API ``GatewayHTTPListenerIsolation``).

A port may carry several listeners that differ by hostname (none, ``*.example.com``, ``*.foo.example.com``,
``abc.foo.example.com``). A request belongs to the most specific listener whose hostname matches its Host --
the exact name, else the longest wildcard suffix, else the listener without a hostname -- and only the routes
attached to that listener may answer it: a request for ``abc.foo.example.com`` never falls through to a route
of the ``*.example.com`` listener. The listeners are the ones the route documents name (their ``hostname``);
documents written without one belong to the port's listener without hostname, as before.
"""

from __future__ import annotations

from collections.abc import Iterator

from graylane.routing.entries import Entry
from graylane.routing.hosts import HostIndex
from graylane.routing.request import RequestView


class PortIndex:
    """The listeners of one port, each a :class:`HostIndex` of the routes attached to it."""

    __slots__ = ("_exact", "_none", "_wild", "users")

    def __init__(self) -> None:
        self._exact: dict[str, HostIndex] = {}
        self._wild: dict[str, HostIndex] = {}  # ".example.com" -> the listener *.example.com
        self._none: HostIndex | None = None
        self.users: dict[str | None, set[str]] = {}  # listener hostname -> the routes attached to it

    def listener(self, hostname: str | None) -> HostIndex | None:
        if hostname is None:
            return self._none
        if hostname.startswith("*."):
            return self._wild.get(hostname[1:])
        return self._exact.get(hostname)

    def open(self, hostname: str | None) -> HostIndex:
        """The index of the listener ``hostname``, created empty when it is new."""
        found = self.listener(hostname)
        if found is not None:
            return found
        index = HostIndex()
        if hostname is None:
            self._none = index
        elif hostname.startswith("*."):
            self._wild[hostname[1:]] = index
        else:
            self._exact[hostname] = index
        self.users[hostname] = set()
        return index

    def close(self, hostname: str | None) -> None:
        """Forget the listener ``hostname`` (no route is attached to it any more)."""
        self.users.pop(hostname, None)
        if hostname is None:
            self._none = None
        elif hostname.startswith("*."):
            self._wild.pop(hostname[1:], None)
        else:
            self._exact.pop(hostname, None)

    def indexes(self) -> Iterator[HostIndex]:
        yield from self._exact.values()
        yield from self._wild.values()
        if self._none is not None:
            yield self._none

    def select(self, host: str) -> HostIndex | None:
        """The most specific listener whose hostname matches ``host``; None: no listener of the port does."""
        if self._exact or self._wild:
            index = self._exact.get(host)
            if index is not None:
                return index
            dot = host.find(".")
            while dot >= 0:  # the longest suffix first
                index = self._wild.get(host[dot:])
                if index is not None:
                    return index
                dot = host.find(".", dot + 1)
        return self._none

    def match(self, host: str, path: str, view: RequestView | None) -> Entry | None:
        index = self.select(host)
        return None if index is None else index.match(host, path, view)

    def __bool__(self) -> bool:
        return bool(self.users)
