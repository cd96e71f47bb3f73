"""The request head of the fast server's client connection (``connection.py``), collected from httptools'
callbacks and checked as it arrives: line and header limits (431), one ``Host``, framing (a single
``Transfer-Encoding: chunked`` or a ``Content-Length``), no ``CONNECT``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from graylane.proxy.request import FastRequest

if TYPE_CHECKING:
    from graylane.proxy.server.connection import Connection

_METHODS: dict[bytes, str] = {}
_FRAMING_LENGTHS = frozenset({4, 14, 17})  # len(b"host"), len(b"content-length"), len(b"transfer-encoding")
_VERSIONS = {"1.1": (1, 1), "1.0": (1, 0)}


class Reject(Exception):
    """A request the proxy refuses while parsing its head: answered with ``status``, then closed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BadBody(Exception):
    """The request body broke its framing."""


class RequestHead:
    """One request head being parsed; ``begin`` starts the next. Methods return 0 or the status to refuse."""

    def __init__(self, *, max_line: int, max_headers: int) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hosts = 0
        self.te: list[bytes] = []  # Transfer-Encoding values
        self.length: bytes | None = None  # Content-Length
        self.size = 0  # bytes received since the head began

    def begin(self) -> None:
        self.url = b""
        self.headers = []
        self.hosts = 0
        self.te = []
        self.length = None
        self.size = 0

    def add_url(self, url: bytes) -> int:
        self.url += url
        return 431 if len(self.url) > self.max_line else 0

    def add_header(self, name: bytes, value: bytes) -> int:
        limit = self.max_line
        if len(name) > limit or len(value) > limit or len(self.headers) >= self.max_headers:
            return 431
        if len(name) in _FRAMING_LENGTHS:  # Host, Content-Length, Transfer-Encoding (by length first)
            lower = name.lower()
            if lower == b"host":
                self.hosts += 1
                if self.hosts > 1:
                    return 400
            elif lower == b"transfer-encoding":
                self.te.append(value)
            elif lower == b"content-length":
                self.length = value  # llhttp accepts one, digits only
        self.headers.append((name, value))
        return 0

    def request(
        self, parser: Any, *, keep_alive: bool, conn: Connection, transport: asyncio.Transport, remote: str
    ) -> FastRequest | int:
        """The parsed request, or the status to refuse it with."""
        method_raw: bytes = parser.get_method()
        method = _METHODS.get(method_raw)
        if method is None:
            if method_raw == b"CONNECT":
                return 400
            method = _METHODS.setdefault(method_raw, method_raw.decode("ascii"))
        te = self.te
        if te and (len(te) > 1 or te[0].strip().lower() != b"chunked"):
            return 400
        length = None if te or self.length is None else int(self.length)
        version = _VERSIONS.get(parser.get_http_version()) or (1, 0)
        return FastRequest(
            method=method, target=self.url, raw_headers=tuple(self.headers), version=version,
            keep_alive=keep_alive and parser.should_keep_alive(), content_length=length, chunked=bool(te),
            conn=conn, transport=transport, remote=remote,
        )  # fmt: skip
