"""Hostname matching between a listener and a route (the HTTPRoute ``hostnames`` rules of the spec).

A wildcard ``*.example.com`` matches names with one or more labels in front (``a.example.com``,
``a.b.example.com``), never ``example.com`` itself. The intersection of a listener hostname and a route's
hostnames is what the route is served for on that listener:

* no listener hostname: the route's hostnames (none: any host);
* no route hostnames: the listener's hostname;
* otherwise each route hostname that the listener's matches, or that matches the listener's -- the more
  specific of the two is kept (``*.example.com`` and ``a.example.com`` give ``a.example.com``).

An empty intersection of two non-empty sides means the route does not attach to that listener
(``NoMatchingListenerHostname``).
"""

from __future__ import annotations

from collections.abc import Iterable

ANY: tuple[str, ...] = ()  # served for any Host


def matches(pattern: str, host: str) -> bool:
    """Whether ``pattern`` (a name or a ``*.`` wildcard) covers the name or wildcard ``host``."""
    if not pattern.startswith("*."):
        return pattern == host
    suffix = pattern[1:]  # ".example.com"
    if host.startswith("*."):
        return host[1:].endswith(suffix)  # *.a.example.com is covered by *.example.com
    return host.endswith(suffix) and len(host) > len(suffix)


def intersect(listener: str | None, route: Iterable[str]) -> tuple[str, ...] | None:
    """The hostnames served on ``listener`` for a route with ``route`` hostnames; ``ANY`` (empty) means any
    Host, ``None`` means no intersection."""
    names = tuple(route)
    if listener is None:
        return names
    if not names:
        return (listener,)
    out: list[str] = []
    for name in names:
        if matches(listener, name):
            kept = name
        elif matches(name, listener):
            kept = listener
        else:
            continue
        if kept not in out:
            out.append(kept)
    return tuple(out) or None


def union(served: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """The hosts of several listeners of one port together; any one of them serving any Host wins."""
    out: list[str] = []
    for names in served:
        if not names:
            return ANY
        out.extend(n for n in names if n not in out)
    return tuple(out)
