"""Loopback ports for test servers that are started by port number (processes, the control plane).

Binding port 0 and closing the socket is racy: the kernel hands out the same ephemeral range to the
*source* ports of outgoing connections, so between the pick and the real bind a client socket of this
or another test may take the port, and the server fails with EADDRINUSE (seen in CI). ``free_port``
therefore picks below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``), where only an
explicit bind can land, checks that the port is free right now, and never hands out the same port twice
in one process. A server that can bind port 0 itself and report it should do that instead.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_FLOOR = 10000  # leave the well-known and registered low ports alone
_given: set[int] = set()
_rng = random.SystemRandom()  # hypothesis reseeds the global `random` inside tests; this one is independent


def picking_range() -> tuple[int, int]:
    """Where ``free_port`` picks: below the ephemeral range, or above it if there is no room below."""
    try:
        low, high = (int(v) for v in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    if low - 1 - _FLOOR >= 1000:
        return _FLOOR, low - 1
    if 65535 - high >= 1000:
        return high + 1, 65535
    return _FLOOR, 65535  # no room outside it: fall back to the whole range, still checked and never repeated


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, outside the ephemeral range, and new to this process."""
    low, high = picking_range()
    for _ in range(500):
        port = _rng.randint(low, high)
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free loopback port in {low}-{high}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))  # without SO_REUSEADDR: a port in TIME_WAIT counts as taken too
        except OSError:
            return False
    return True
