"""Route documents on their way from the sources to :class:`RouteState`: coalesced, applied in slices.

A source offers each document it sees (a watch event, a changed file) with the name of where it came from.
Offers wait in a dict keyed by that name, so a newer document for the same source *replaces* the one still
waiting (counted in ``graylane_config_coalesced_total``): whatever the rate of updates, at most one document
per source waits -- a burst of 1,000 updates to one route costs one swap, and nothing queues without bound.
The applier takes what waits in arrival order, at most ``slice_size`` documents per turn of the event
loop, so requests keep being served while a large batch (a re-list, a rollout touching many routes) lands.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RouteState

SLICE = 64


class Updates:
    """The waiting documents of one :class:`RouteState` (at most one per source) and their applier."""

    def __init__(self, state: RouteState, *, slice_size: int = SLICE) -> None:
        self.state = state
        self.slice_size = slice_size
        self._waiting: dict[str, bytes | None] = {}
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()

    def offer(self, source: str, raw: bytes | None) -> None:
        """``raw`` (``None``: the source is gone) replaces whatever still waits for ``source``."""
        if source in self._waiting:
            self.state.metrics.coalesced += 1
        self._waiting[source] = raw
        self._settled.clear()
        self._wake.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def apply_slice(self) -> bool:
        """Apply up to ``slice_size`` waiting documents, oldest first; True if the table changed."""
        waiting = self._waiting
        batch: dict[str, bytes | None] = {}
        while waiting and len(batch) < self.slice_size:
            source = next(iter(waiting))
            batch[source] = waiting.pop(source)
        changed = self.state.apply(batch) if batch else False
        if not waiting:
            self._settled.set()
        return changed

    async def settle(self) -> None:
        """Return once nothing waits (everything offered so far is applied or rejected)."""
        await self._settled.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                self.apply_slice()
                await asyncio.sleep(0)  # let requests run between slices
