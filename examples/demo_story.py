"""The demo's output helpers: headings, the live split bar, and what the story needs of a running stack."""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster.stack import http_get

HOST = "checkout.example.com"
LIVE = sys.stdout.isatty()  # redraw the split table in place on a terminal; one line per phase otherwise
BOLD, DIM, GREEN, BLUE, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[34m", "\033[0m") if LIVE else ("",) * 5
)


@dataclass(frozen=True)
class Target:
    """Where the demo sends traffic, and how it asks the proxies what they serve."""

    base: str
    wait_weight: Callable[[float], object]
    explain: Callable[[], dict[str, Any]]


def say(text: str) -> None:
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


@dataclass
class Phase:
    """``with Phase("what"):`` prints what starts and, at the end, how long it took."""

    what: str
    started: float = 0.0

    def __enter__(self) -> Phase:
        say(self.what)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        print(f"  ({time.monotonic() - self.started:.1f} s)", flush=True)


def bar(share: float, width: int = 40) -> str:
    fill = round(share * width)
    return f"{BLUE}{'█' * fill}{RESET}{DIM}{'░' * (width - fill)}{RESET}"


def drive(base: str, n: int, *, headers: dict[str, str] | None = None, label: str = "") -> dict[str, str]:
    """Send n requests as n different users (the same users every call); print the split as they come back.

    Returns which version each user got."""
    seen: Counter[str] = Counter()
    got: dict[str, str] = {}
    rng = random.Random(7)
    for i in range(1, n + 1):
        user = f"user-{rng.randrange(10**9)}"
        status, body = http_get(f"{base}/", {"Host": HOST, "X-User-Id": user} | (headers or {}))
        got[user] = body.decode().strip() if status == 200 else f"HTTP {status}"
        seen[got[user]] += 1
        if (LIVE and i % 20 == 0) or i == n:
            share = seen["v2"] / i
            counts = f"v1 {seen['v1']:>4}  v2 {seen['v2']:>4}"
            line = f"  {label:<24} {i:>4}/{n}  {counts}  {bar(share)} {share:6.1%}"
            print(f"\r{line}", end="" if LIVE else "\n", flush=True)
    if LIVE:
        print()
    return got
