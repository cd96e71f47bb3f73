"""A small least-recently-used map with a fixed size (memos of pure functions; no expiry, no I/O)."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most ``limit`` entries; :meth:`get` marks an entry used, :meth:`put` drops the least used one."""

    __slots__ = ("_items", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        items = self._items
        found = items.pop(key, None)
        if found is not None:
            items[key] = found  # most recently used: last
        return found

    def put(self, key: K, value: V) -> None:
        items = self._items
        items.pop(key, None)
        if len(items) >= self.limit:
            del items[next(iter(items))]
        items[key] = value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
