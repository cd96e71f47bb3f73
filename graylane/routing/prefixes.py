"""The entries of one host (or one wildcard suffix, or "any host") by path, changed one entry at a time.

The order is :func:`graylane.routing.entries.rank`'s: Exact paths, then the longest ``PathPrefix``, then
regular expressions; entries on the same path by the rest of their rank (methods, headers, query, age,
``namespace/name``, rule order). The first entry whose conditions hold wins. Instead of a scan of every entry:
Exact paths sit in a dict by path; prefixes in a dict by prefix, probed at each ``/`` of the request path
(longest first, never beyond the longest prefix present, then ``/``), so a lookup costs a handful of dict
probes whatever the number of routes; the (rare) regular expressions are scanned in rank order. A prefix
matches whole segments: ``/api`` matches ``/api`` and ``/api/x``, not ``/apix``. A single entry (most
hosts have one) is held without any dict.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator

from graylane.routing.entries import Entry
from graylane.routing.request import RequestView


def _rank(entry: Entry) -> tuple[object, ...]:
    return entry.rank


class EntryIndex:
    """The entries of one host tier, in rank order per path."""

    __slots__ = ("_exact", "_longest", "_prefixes", "_regex", "_single", "_size", "shadowing")

    def __init__(self) -> None:
        self._single: Entry | None = None  # the only entry, when there is exactly one
        self._exact: dict[str, list[Entry]] = {}
        self._prefixes: dict[str, list[Entry]] = {}
        self._regex: list[Entry] = []
        self._longest = 0  # the longest prefix present (other than "/")
        self._size = 0
        self.shadowing = 0  # CanaryRoute entries shadowed by another one on the same prefix

    def __len__(self) -> int:
        return self._size

    def match(self, path: str, view: RequestView | None) -> Entry | None:
        single = self._single
        if single is not None:
            return single if single.accepts(path, view) else None
        if self._size == 0:
            return None
        if self._exact:
            for entry in self._exact.get(path, ()):
                if entry.accepts(path, view):
                    return entry
        prefixes = self._prefixes
        if prefixes:
            longest = self._longest
            if len(path) <= longest:
                found = _first(prefixes.get(path), path, view)
                if found is not None:
                    return found
            cut = path.rfind("/", 0, min(len(path), longest + 1))
            while cut > 0:
                found = _first(prefixes.get(path[:cut]), path, view)
                if found is not None:
                    return found
                cut = path.rfind("/", 0, cut)
            found = _first(prefixes.get("/"), path, view)
            if found is not None:
                return found
        return _first(self._regex, path, view)

    def add(self, entry: Entry) -> None:
        if self._size == 0:
            self._single, self._size = entry, 1
            return
        if self._single is not None:  # a second entry: from now on, by path
            only, self._single, self._size = self._single, None, 0
            self._insert(only)
        self._insert(entry)

    def remove(self, entry: Entry) -> bool:
        if self._single is not None:
            if self._single is not entry:
                return False
            self._single, self._size = None, 0
            return True
        group = self._group(entry)
        if group is None or entry not in group:
            return False
        before = _shadowed(group) if entry.kind == "PathPrefix" else 0
        group.remove(entry)
        self._size -= 1
        if entry.kind == "PathPrefix":
            self.shadowing += _shadowed(group) - before
            if not group:
                del self._prefixes[entry.path]
                if len(entry.path) == self._longest:
                    self._longest = max((len(p) for p in self._prefixes if p != "/"), default=0)
        elif entry.kind == "Exact" and not group:
            del self._exact[entry.path]
        if self._size == 1:  # back to the single entry
            self._single = next(self.entries())
            self._exact, self._prefixes, self._regex = {}, {}, []
            self._longest = self.shadowing = 0
        return True

    def _group(self, entry: Entry) -> list[Entry] | None:
        if entry.kind == "PathPrefix":
            return self._prefixes.get(entry.path)
        if entry.kind == "Exact":
            return self._exact.get(entry.path)
        return self._regex

    def _insert(self, entry: Entry) -> None:
        if entry.kind == "PathPrefix":
            group = self._prefixes.setdefault(entry.path, [])
            before = _shadowed(group)
            bisect.insort(group, entry, key=_rank)
            self.shadowing += _shadowed(group) - before
            if entry.path != "/":
                self._longest = max(self._longest, len(entry.path))
        else:
            group = self._exact.setdefault(entry.path, []) if entry.kind == "Exact" else self._regex
            bisect.insort(group, entry, key=_rank)
        self._size += 1

    def shadowed(self) -> Iterator[tuple[str, Entry, Entry]]:
        """``(prefix, winner, shadowed)``: CanaryRoute entries next to each other on one prefix."""
        for prefix in sorted(self._prefixes, key=lambda p: (-len(p), p)):
            for first, second in itertools.pairwise(self._prefixes[prefix]):
                if _clash(first, second):
                    yield prefix, first, second

    def entries(self) -> Iterator[Entry]:
        if self._single is not None:
            yield self._single
        for group in itertools.chain(self._exact.values(), self._prefixes.values()):
            yield from group
        yield from self._regex


def _first(group: list[Entry] | None, path: str, view: RequestView | None) -> Entry | None:
    for entry in group or ():
        if entry.accepts(path, view):
            return entry
    return None


def _clash(first: Entry, second: Entry) -> bool:
    return first.action is None and second.action is None and first.route is not second.route


def _shadowed(group: list[Entry]) -> int:
    return sum(_clash(a, b) for a, b in itertools.pairwise(group))
