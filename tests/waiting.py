"""The suite's one ``eventually``: poll a check until it holds, fail with what was awaited.

For an outcome that no event announces (a status written by another process, a route applied by a
watch). Never a fixed sleep: the wait ends as soon as the check holds, and ``within`` only bounds failure.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


class _Deadline:
    def __init__(self, within: float, what: str) -> None:
        self.end, self.within, self.what = time.monotonic() + within, within, what

    def check(self) -> None:
        if time.monotonic() > self.end:
            pytest.fail(f"not within {self.within:g}s: {self.what}")


def eventually(check: Callable[[], T], *, what: str, within: float = 30.0, interval: float = 0.2) -> T:
    """Call ``check`` until it returns something truthy, and return that."""
    deadline = _Deadline(within, what)
    while not (value := check()):
        deadline.check()
        time.sleep(interval)
    return value


async def eventually_async(
    check: Callable[[], T | Awaitable[T]], *, what: str, within: float = 30.0, interval: float = 0.05
) -> T:
    """The same from a coroutine: ``check`` may be plain or a coroutine function."""
    deadline = _Deadline(within, what)
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        deadline.check()
        await asyncio.sleep(interval)
