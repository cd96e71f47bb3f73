"""The proxy's own answers (404 no route, 503 no table, 502/504 upstream failures, 400/413 bodies, and the
308 of a route that sends plain HTTP to HTTPS).

The routing code says only the status (:class:`ErrorAnswer`); each server writes it its way: the fast
server as bytes (:func:`error_bytes`, no response object), the aiohttp reference server as a
``web.Response`` with the same head and body. The body is the status line and nothing else: no parser
message that echoes input, no traceback.
"""

from __future__ import annotations

from http import HTTPStatus

_PHRASES = {int(s): s.phrase for s in HTTPStatus}


class ErrorAnswer:
    """A proxy-generated answer: ``status``, ``close`` when the connection must not be reused, and the
    ``location`` of a redirect (an HTTPRoute's RequestRedirect)."""

    __slots__ = ("close", "location", "status")

    def __init__(self, status: int, *, close: bool = False, location: str | None = None) -> None:
        self.status = status
        self.close = close
        self.location = location


def phrase(status: int) -> str:
    return _PHRASES.get(status, "Error")


def error_body(status: int) -> bytes:
    return f"{status} {phrase(status)}\n".encode()


def error_bytes(
    status: int, *, head_only: bool = False, keep_alive: bool = False, location: str | None = None
) -> bytes:
    """The whole answer for ``status`` as the fast server writes it."""
    body = error_body(status)
    close = "" if keep_alive else "Connection: close\r\n"
    where = f"Location: {location}\r\n" if location else ""
    head = (
        f"HTTP/1.1 {status} {phrase(status)}\r\nServer: graylane\r\n{where}"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n{close}\r\n"
    ).encode("utf-8", "surrogateescape")
    return head if head_only else head + body


def redirect_bytes(location: str, *, head_only: bool = False) -> bytes:
    """A ``308 Permanent Redirect`` to ``location`` (already checked: no control characters), closing."""
    body = error_body(308)
    head = (
        f"HTTP/1.1 308 {phrase(308)}\r\nServer: graylane\r\nLocation: {location}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body
