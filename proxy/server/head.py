"""The request head of the fast server's client connection (``connection.py``), collected from httptools'
callbacks and checked as it arrives: line, header count and total head limits (431), one ``Host``, framing
(a single ``Transfer-Encoding: chunked`` or a ``Content-Length``), no ``CONNECT``, the HTTP version as sent
(``target.py`` refuses all but 1.0 and 1.1).
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
HEAD_SLICE = 16 * 1024  # a bigger read is parsed in slices, so a head that starts in it is measured


class Reject(Exception):
    """A request the proxy refuses while parsing its head: answered with ``status``, then closed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BadBody(Exception):
    """The request body broke its framing."""


class RequestHead:
    """One request head being parsed; ``begin`` starts the next. Methods return 0 or the status to refuse."""

    def __init__(self, *, max_line: int, max_headers: int, max_head: int) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_head = max_head
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hosts = 0
        self.te: list[bytes] = []  # Transfer-Encoding values
        self.length: bytes | None = None  # Content-Length
        self.size = 0  # bytes of reads that arrived entirely inside this head (connection.data_received)
        self.parsed = 0  # bytes of the target and complete header lines (at most the head's size)
        self.began = False  # on_message_begin ran during the current read

    def begin(self) -> None:
        self.began = True
        self.url = b""
        self.headers = []
        self.hosts = 0
        self.te = []
        self.length = None
        self.size = 0
        self.parsed = 0

    def add_url(self, url: bytes) -> int:
        self.url += url
        self.parsed += len(url)
        return 431 if len(self.url) > self.max_line or self.parsed > self.max_head else 0

    def add_header(self, name: bytes, value: bytes) -> int:
        limit = self.max_line
        self.parsed += len(name) + len(value) + 3  # ":" and CRLF
        if len(name) > limit or len(value) > limit or len(self.headers) >= self.max_headers:
            return 431
        if self.parsed > self.max_head:
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
        version = _VERSIONS.get(parser.get_http_version()) or _version(parser.get_http_version())
        return FastRequest(
            method=method, target=self.url, raw_headers=tuple(self.headers), version=version,
            keep_alive=keep_alive and parser.should_keep_alive(), content_length=length, chunked=bool(te),
            conn=conn, transport=transport, remote=remote,
        )  # fmt: skip


def _version(text: str) -> tuple[int, int]:
    """A version other than 1.0 / 1.1 as sent (``target.py`` answers 505, or 400 for HTTP/0.9)."""
    major, _, minor = text.partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else (0, 9)
