"""A tiny MaxMind DB writer (format v2.0, IPv4 tree, 24-bit records) for tests: no extra dependency.

Spec: https://maxmind.github.io/MaxMind-DB/ -- search tree, 16 zero bytes, data section, then the metadata
marker and a metadata map. Supports maps, UTF-8 strings, uint16/32/64 and arrays: enough for country data.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def _ctrl(type_: int, size: int) -> bytes:
    assert size < 29, "only small sizes are needed here"
    if type_ <= 7:
        return bytes([(type_ << 5) | size])
    return bytes([size, type_ - 7])


def _uint(type_: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return _ctrl(type_, len(raw)) + raw


def encode(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, dict):
        return _ctrl(7, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, tuple) and value[0] in ("uint16", "uint32", "uint64"):
        return _uint({"uint16": 5, "uint32": 6, "uint64": 9}[value[0]], value[1])
    raise TypeError(type(value))


class _Node:
    def __init__(self) -> None:
        self.children: list[Any] = [None, None]


def write_ipv4_db(networks: dict[str, dict[str, Any]]) -> bytes:
    """``{"81.2.69.0/24": {"country": {"iso_code": "GB"}}, ...}`` -> the bytes of an .mmdb file."""
    data = b""
    root = _Node()
    for cidr, record in networks.items():
        offset = len(data)
        data += encode(record)
        net = ipaddress.IPv4Network(cidr)
        node, bits = root, int(net.network_address)
        for depth in range(net.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == net.prefixlen - 1:
                node.children[bit] = ("data", offset)
            else:
                if not isinstance(node.children[bit], _Node):
                    node.children[bit] = _Node()
                node = node.children[bit]
    nodes: list[_Node] = []

    def number(node: _Node) -> None:
        nodes.append(node)
        for child in node.children:
            if isinstance(child, _Node):
                number(child)

    number(root)
    index = {id(n): i for i, n in enumerate(nodes)}
    count = len(nodes)

    def record(child: Any) -> int:
        if child is None:
            return count
        if isinstance(child, _Node):
            return index[id(child)]
        return count + 16 + child[1]

    tree = b"".join(struct.pack(">I", record(c))[1:] for n in nodes for c in n.children)
    metadata = {
        "node_count": ("uint32", count),
        "record_size": ("uint16", 24),
        "ip_version": ("uint16", 4),
        "database_type": "Graylane-Test-Country",
        "languages": ["en"],
        "binary_format_major_version": ("uint16", 2),
        "binary_format_minor_version": ("uint16", 0),
        "build_epoch": ("uint64", 1_700_000_000),
        "description": {"en": "test data"},
    }
    return tree + b"\x00" * 16 + data + METADATA_MARKER + encode(metadata)
