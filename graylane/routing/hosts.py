"""The entries served on one port (or one Gateway listener), by host tier (:class:`HostIndex`)."""

from __future__ import annotations

from graylane.routing.entries import Entry
from graylane.routing.prefixes import EntryIndex
from graylane.routing.request import RequestView

EXACT, WILDCARD, ANY = 0, 1, 2  # the host tiers, in lookup order
Place = tuple[int, str]  # (tier, host): an exact host, a wildcard's suffix ".example.com", or (ANY, "")


class HostIndex:
    """The entries served on one port, by host tier; one entry is added or removed in place.

    Exact hosts and wildcard suffixes are dicts of :class:`~graylane.routing.prefixes.EntryIndex`, so a
    lookup costs the same at 10 or 10,000 routes: the exact host, then its suffixes (longest first), then
    the routes for any host -- the first tier with an entry whose conditions hold wins.
    """

    __slots__ = ("_any", "_exact", "_wild", "conflicted")

    def __init__(self) -> None:
        self._exact: dict[str, EntryIndex] = {}
        self._wild: dict[str, EntryIndex] = {}  # ".example.com" -> the entries of *.example.com
        self._any = EntryIndex()
        self.conflicted: set[Place] = set()  # places where a CanaryRoute shadows another

    def add(self, entry: Entry, hosts: tuple[str, ...]) -> None:
        for place in _places(hosts):
            index = self._index(place)
            if index is None:
                index = (self._exact if place[0] == EXACT else self._wild)[place[1]] = EntryIndex()
            index.add(entry)
            self._note(place, index)

    def remove(self, entry: Entry, hosts: tuple[str, ...]) -> None:
        for place in _places(hosts):
            index = self._index(place)
            if index is None:
                continue
            index.remove(entry)
            if not index and place[0] != ANY:
                del (self._exact if place[0] == EXACT else self._wild)[place[1]]
            self._note(place, index)

    def _index(self, place: Place) -> EntryIndex | None:
        tier, host = place
        if tier == ANY:
            return self._any
        return (self._exact if tier == EXACT else self._wild).get(host)

    def _note(self, place: Place, index: EntryIndex) -> None:
        if index.shadowing:
            self.conflicted.add(place)
        else:
            self.conflicted.discard(place)

    def match(self, host: str, path: str, view: RequestView | None) -> Entry | None:
        index = self._exact.get(host)
        if index is not None:
            found = index.match(path, view)
            if found is not None:
                return found
        wild = self._wild
        if wild:
            dot = host.find(".")
            while dot >= 0:  # the longest suffix first
                index = wild.get(host[dot:])
                if index is not None:
                    found = index.match(path, view)
                    if found is not None:
                        return found
                dot = host.find(".", dot + 1)
        return self._any.match(path, view)

    def conflicts(self) -> list[str]:
        out = []
        for place in sorted(self.conflicted):
            tier, host = place
            where = ("host " + host, "host *" + host, "any host")[tier]
            index = self._index(place)
            for prefix, first, second in index.shadowed() if index is not None else ():
                out.append(f"{where} path {prefix}: {second.key} is shadowed by {first.key}")
        return out


def _places(hosts: tuple[str, ...]) -> list[Place]:
    if not hosts:
        return [(ANY, "")]
    return [(WILDCARD, h[1:]) if h.startswith("*.") else (EXACT, h) for h in hosts]
