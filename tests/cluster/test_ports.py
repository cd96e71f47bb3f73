"""free_port: outside the kernel's ephemeral range, never repeated, and bindable when handed out."""

from __future__ import annotations

import socket

from cluster.ports import _RANGE_FILE, _bindable, free_port, picking_range


def test_ports_are_outside_the_ephemeral_range_and_unique() -> None:
    eph_low, eph_high = (int(v) for v in _RANGE_FILE.read_text().split())
    low, high = picking_range()
    assert high < eph_low or low > eph_high
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(low <= p <= high for p in ports)


def test_a_port_in_use_is_not_bindable() -> None:
    port = free_port()
    assert _bindable(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # it was free when handed out: this would raise otherwise
        sock.listen()
        assert not _bindable(port)
