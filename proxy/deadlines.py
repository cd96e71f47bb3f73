"""Coarse timers for the data plane: one periodic sweep instead of a timer per request.

Every client and upstream connection has deadlines (the header-read, idle and upstream request timeouts).
Arming and cancelling an event-loop timer for each of them costs more per request than the routing
decision, so a connection only stores ``deadline`` (a ``loop.time()`` value, ``inf`` when none) and joins
the :class:`Deadlines` set; a sweep every ``tick`` seconds calls ``expire()`` on every member whose deadline
has passed. A timeout therefore fires between ``deadline`` and ``deadline + tick``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

DEFAULT_TICK = 0.1
NEVER = float("inf")


class Expiring(Protocol):
    deadline: float

    def expire(self) -> None: ...


class Deadlines:
    """The members whose ``deadline`` is checked on every tick (started lazily on the running loop)."""

    def __init__(self, *, tick: float = DEFAULT_TICK) -> None:
        self.tick = tick
        self._members: set[Expiring] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, member: Expiring) -> None:
        self._members.add(member)
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._handle = self._loop.call_later(self.tick, self._sweep)

    def forget(self, member: Expiring) -> None:
        self._members.discard(member)

    def now(self) -> float:
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _sweep(self) -> None:
        assert self._loop is not None
        if not self._members:
            self._handle = None  # restarted by the next watch()
            return
        now = self._loop.time()
        expired = [m for m in self._members if m.deadline <= now]
        for member in expired:
            member.deadline = NEVER
            member.expire()
        self._handle = self._loop.call_later(self.tick, self._sweep)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._members.clear()
