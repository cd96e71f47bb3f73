"""A deduplicated work queue of keys (pure: the clock is a parameter of every call).

A key is waiting at most once, however often it is added: a burst of 1,000 events for one route is one
reconcile. A key being worked on is never handed out twice; added meanwhile, it comes back once the work is
:meth:`WorkQueue.done`. Keys added with ``low=True`` wait behind every normal key (Upstream status writes go
after the routes), and the caller may hold them back while enough of them are in work. A key added with a
``delay`` (a retry) waits until then, unless it is added again without one.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._ready: dict[K, None] = {}  # insertion-ordered: first in, first out
        self._low: dict[K, None] = {}
        self._later: dict[K, tuple[float, bool]] = {}  # key -> (due time, low)
        self._heap: list[tuple[float, int, K]] = []  # due times of _later (stale entries skipped)
        self._seq = itertools.count()
        self._busy: set[K] = set()
        self._again: dict[K, bool] = {}  # added (without delay) while busy -> low

    def __len__(self) -> int:
        """Keys waiting: ready, delayed, or due again once their work is done."""
        return len(self._ready) + len(self._low) + len(self._later) + len(self._again)

    def add(self, key: K, *, now: float, delay: float = 0.0, low: bool = False) -> None:
        if delay > 0:
            self._delay(key, now + delay, low)
        elif key in self._busy:
            self._again[key] = self._again.get(key, True) and low
        elif key not in self._ready and not (low and key in self._low):
            self._later.pop(key, None)
            if low:
                self._low[key] = None
            else:
                self._low.pop(key, None)
                self._ready[key] = None

    def _delay(self, key: K, due: float, low: bool) -> None:
        if key in self._ready or key in self._low or key in self._again:
            return  # coming sooner anyway
        current = self._later.get(key)
        if current is None or due < current[0]:
            self._later[key] = (due, low)
            heapq.heappush(self._heap, (due, next(self._seq), key))

    def pop(self, *, now: float, low: bool = True) -> K | None:
        """The next key to work on (marked busy until :meth:`done`), or None when none is due; low keys
        only with ``low`` (the caller bounds how many of them are worked on at once)."""
        self._promote(now)
        for waiting in (self._ready, self._low) if low else (self._ready,):
            if waiting:
                key = next(iter(waiting))
                del waiting[key]
                self._busy.add(key)
                return key
        return None

    def done(self, key: K, *, now: float) -> None:
        self._busy.discard(key)
        if key in self._again:
            self.add(key, now=now, low=self._again.pop(key))
        else:
            self._promote(now)

    def next_due(self, *, now: float, low: bool = True) -> float | None:
        """Seconds until a delayed key is due (0 when one is ready now), None when nothing waits; waiting
        low keys count only with ``low`` (a caller that may not take one now waits for them otherwise)."""
        self._promote(now)
        if self._ready or (low and self._low):
            return 0.0
        self._drop_stale()
        return max(0.0, self._heap[0][0] - now) if self._heap else None

    def busy(self) -> int:
        return len(self._busy)

    def _drop_stale(self) -> None:
        while self._heap:
            due, _, key = self._heap[0]
            entry = self._later.get(key)
            if entry is not None and entry[0] == due:
                return
            heapq.heappop(self._heap)

    def _promote(self, now: float) -> None:
        """Delayed keys that are due join the ready ones (a busy one waits for its :meth:`done`)."""
        self._drop_stale()
        held = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            key = entry[2]
            if self._later.get(key, (None,))[0] != entry[0]:
                continue
            if key in self._busy:
                held.append(entry)
                continue
            low = self._later.pop(key)[1]
            self.add(key, now=now, low=low)
        for entry in held:
            heapq.heappush(self._heap, entry)
