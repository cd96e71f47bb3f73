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
    """The listeners of one port, each a :class:`HostIndex` of the routes attached to it, by hostname."""

    __slots__ = ("_listeners", "_wildcards", "users")

    def __init__(self) -> None:
        self._listeners: dict[str | None, HostIndex] = {}  # "abc.example.com", "*.example.com" or None
        self._wildcards = 0  # how many listener hostnames start with "*."
        self.users: dict[str | None, set[str]] = {}  # listener hostname -> the routes attached to it

    def listener(self, hostname: str | None) -> HostIndex | None:
        return self._listeners.get(hostname)

    def open(self, hostname: str | None) -> tuple[HostIndex, bool]:
        """The index of the listener ``hostname``, and whether it is new (created empty)."""
        index = self._listeners.get(hostname)
        if index is not None:
            return index, False
        index = self._listeners[hostname] = HostIndex()
        self.users[hostname] = set()
        self._wildcards += _wildcard(hostname)
        return index, True

    def close(self, hostname: str | None) -> None:
        """Forget the listener ``hostname`` (no route is attached to it any more)."""
        if self._listeners.pop(hostname, None) is not None:
            del self.users[hostname]
            self._wildcards -= _wildcard(hostname)

    def indexes(self) -> Iterator[HostIndex]:
        return iter(self._listeners.values())

    def select(self, host: str) -> HostIndex | None:
        """The most specific listener whose hostname matches ``host``; None: no listener of the port does."""
        listeners = self._listeners
        index = listeners.get(host)
        if index is None and self._wildcards:
            dot = host.find(".")
            while dot >= 0 and index is None:  # the longest suffix first
                index = listeners.get("*" + host[dot:])
                dot = host.find(".", dot + 1)
        return listeners.get(None) if index is None else index

    def match(self, host: str, path: str, view: RequestView | None) -> Entry | None:
        index = self.select(host)
        return None if index is None else index.match(host, path, view)

    def __bool__(self) -> bool:
        return bool(self._listeners)


def _wildcard(hostname: str | None) -> int:
    return int(hostname is not None and hostname.startswith("*."))
