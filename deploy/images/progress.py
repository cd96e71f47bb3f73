"""Progress lines with elapsed time for the long phases of an image build (on stderr)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """``with phase("building x"):`` prints the start, then the elapsed seconds (or that it failed)."""
    started = time.monotonic()
    say(f"{name} ...")
    try:
        yield
    except BaseException:
        say(f"{name} FAILED after {time.monotonic() - started:.1f}s")
        raise
    say(f"{name} done in {time.monotonic() - started:.1f}s")
