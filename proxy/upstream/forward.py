"""One request through one upstream: send the head and body, stream the response back.

A request without a body, or with a small ``Content-Length`` body (read whole first), is *replayable*: if the
upstream refuses or resets before one byte of response, the caller may send it again (to a fresh connection
or, for the canary, to stable). A larger or chunked body is streamed to the upstream as it arrives and is not
replayable. A response that arrived whole with its head goes back as one write of raw bytes
(:class:`RawResponse`, no response object); anything else is streamed with ``Content-Length`` when the
upstream gave one, chunked otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from graylane.proxy import request as client_request
from graylane.proxy.request import ClientRequest, FastRequest, Streamed
from graylane.proxy.target import ClientTarget
from graylane.proxy.upstream.client import UpstreamConnection, UpstreamError
from graylane.proxy.upstream.edits import ResponseEdit
from graylane.proxy.upstream.headers import (
    Forwarding,
    TrackHeaders,
    build_request_head,
    response_head,
    response_headers,
    response_length,
)
from graylane.proxy.upstream.pool import UpstreamPool

BUFFERED_BODY_MAX = 64 * 1024
Tee = Callable[[bytes], None]


class BodyTooLarge(Exception):
    """The client body exceeded the configured limit while it was being streamed."""


class BadRequestBody(Exception):
    """The client body broke its framing (bad chunk) or ended early while it was being streamed."""


class BodyTee(Protocol):
    """Gets a copy of a streamed request body as it passes (a mirrored request's shadow)."""

    def piece(self, data: bytes) -> None: ...

    def body_end(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """Where a decided request goes: compiled once per route table."""

    pool: UpstreamPool
    plan: TrackHeaders
    base_path: bytes
    timeout: float
    response: ResponseEdit | None = None  # a Gateway API ResponseHeaderModifier (edits.py)


@dataclass(slots=True)
class Outgoing:
    """The client request as the forwarder needs it, prepared once (kept across a retry)."""

    method: bytes
    target: bytes
    fwd: Forwarding
    body: bytes | None  # the whole body when buffered; None when there is none or it is streamed
    streamed: bool  # the body is read from the client while sending
    framing: bytes
    max_body: int
    consumed: bool = False  # some of a streamed body was already read from the client
    host: bytes = b""  # an absolute-form target's authority: the upstream's X-Forwarded-Host
    tee: BodyTee | None = None  # a copy of the streamed body goes here too

    @property
    def replayable(self) -> bool:
        return not self.consumed


def _request_line(request: ClientRequest, where: ClientTarget | None) -> tuple[bytes, bytes]:
    if where is not None:
        return request.method.encode("latin-1"), where.target
    raw_target = request.raw_path
    if not raw_target.startswith("/"):  # absolute-form (or "*"): send origin-form
        raw_target = "*" if raw_target == "*" else (request.rel_url.raw_path_qs or "/")
    return request.method.encode("latin-1"), raw_target.encode("utf-8", "surrogateescape")


def _continue(request: ClientRequest) -> None:
    """Answer ``Expect: 100-continue`` (aiohttp's low-level server does not) so the client sends its body."""
    expect = request.headers.get("expect")
    if expect is not None and expect.lower() == "100-continue" and request.version >= (1, 1):
        transport = request.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def bodiless(
    request: ClientRequest, *, fwd: Forwarding, max_body: int, where: ClientTarget | None = None
) -> Outgoing:
    """The common case, without a coroutine: a request that has no body."""
    method, target = _request_line(request, where)
    framing = b"Content-Length: 0\r\n" if request.content_length == 0 else b""
    host = b"" if where is None else where.authority
    return Outgoing(method, target, fwd, None, False, framing, max_body, host=host)


async def prepare(
    request: ClientRequest, *, fwd: Forwarding, max_body: int, body_timeout: float,
    where: ClientTarget | None = None,
) -> Outgoing | int:  # fmt: skip
    """Read what must be read before contacting an upstream; an int is an error status (413, 408, 400)."""
    if not request.body_exists:
        return bodiless(request, fwd=fwd, max_body=max_body, where=where)
    method, target = _request_line(request, where)
    host = b"" if where is None else where.authority
    _continue(request)
    length = request.content_length
    if length is None:  # chunked: streamed, re-chunked towards the upstream
        chunked = b"Transfer-Encoding: chunked\r\n"
        return Outgoing(method, target, fwd, None, True, chunked, max_body, host=host)
    if length > max_body:
        return 413
    framing = b"Content-Length: %d\r\n" % length
    if length > BUFFERED_BODY_MAX:
        return Outgoing(method, target, fwd, None, True, framing, max_body, host=host)
    try:
        async with asyncio.timeout(body_timeout):
            body = await request.content.readexactly(length)
    except TimeoutError:
        return 408
    except asyncio.IncompleteReadError:
        return 400
    return Outgoing(method, target, fwd, body, False, framing, max_body, host=host)


def retryable(exc: UpstreamError, out: Outgoing, *, reused: bool) -> bool:
    """A reused keep-alive connection the upstream had closed meanwhile: worth one fresh attempt."""
    return reused and exc.reason == "reset" and exc.before_response and out.replayable


def start_exchange(request: ClientRequest, out: Outgoing, target: Target, conn: UpstreamConnection) -> None:
    """Send the request head (and a buffered body) on ``conn`` and start its request timeout."""
    pool = target.pool
    head = build_request_head(
        method=out.method,
        target=target.base_path + out.target,
        authority=pool.authority,
        raw_headers=request.raw_headers,
        plan=target.plan,
        fwd=out.fwd,
        framing=out.framing,
        client_host=out.host,
    )
    conn.start(head_only=out.method == b"HEAD")
    conn.arm(target.timeout)
    conn.write(head + out.body if out.body else head)


async def send(
    request: ClientRequest, out: Outgoing, target: Target, *, fresh: bool = False
) -> UpstreamConnection:
    """Send the request and wait for the response head; the caller owns the connection afterwards.

    A reused keep-alive connection that the upstream closed meanwhile is retried once on a fresh one.
    """
    pool = target.pool
    conn = None if fresh else pool.take_idle()
    reused = conn is not None
    if conn is None:
        conn = await pool.connect()
    try:
        start_exchange(request, out, target, conn)
        if out.streamed:
            out.consumed = True
            chunked = out.framing.startswith(b"Transfer")
            await _pump_body(request, conn, chunked=chunked, limit=out.max_body, tee=out.tee)
        while not conn.headers_done:  # inline: one coroutine frame less per request
            if conn.error is not None:
                raise conn.error
            await conn.future()
    except UpstreamError as exc:
        conn.disarm()
        if retryable(exc, out, reused=reused):
            return await send(request, out, target, fresh=True)
        raise
    except BaseException:
        conn.disarm()
        conn.abort()
        raise
    conn.disarm()
    return conn


async def _pump_body(
    request: ClientRequest, conn: UpstreamConnection, *, chunked: bool, limit: int, tee: BodyTee | None
) -> None:
    sent = 0
    content = request.content
    while True:
        if conn.error is not None or conn.headers_done:  # the upstream answered (or failed) early
            conn.reusable = False  # the rest of the body was never sent: this connection is done
            return
        try:
            data = await content.readany()
        except (asyncio.CancelledError, BodyTooLarge):
            raise
        except Exception as exc:
            raise BadRequestBody() from exc
        if not data:
            break
        sent += len(data)
        if sent > limit:
            raise BodyTooLarge()
        if tee is not None:
            tee.piece(data)
        conn.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
        await conn.drain()
    if chunked:
        conn.write(b"0\r\n\r\n")
    if tee is not None:
        tee.body_end()


async def stream(
    request: ClientRequest, conn: UpstreamConnection, target: Target, *, tee: Tee | None = None
) -> tuple[web.StreamResponse | Streamed, bool]:
    """Stream a response that did not arrive whole; the bool is False when the body broke off. ``tee`` gets
    each piece of the body as it is written to the client."""
    if isinstance(request, FastRequest):
        return await _stream_fast(request, conn, target, tee)
    pool = target.pool
    headers, length = response_headers(conn.head)
    resp = web.StreamResponse(status=conn.status, headers=headers)
    if length is not None:
        resp.content_length = length
    elif request.version >= (1, 1) and conn.status not in (204, 304) and request.method != "HEAD":
        resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        ok = await _stream_body(resp, conn, target.timeout, tee)
    except BaseException:
        conn.abort()
        raise
    if ok:
        await resp.write_eof()
        pool.release(conn)
    else:
        conn.abort()
        if request.transport is not None:
            request.transport.abort()  # a truncated body must not look complete to the client
    return resp, ok


async def _stream_fast(
    request: FastRequest, conn: UpstreamConnection, target: Target, tee: Tee | None
) -> tuple[Streamed, bool]:
    status, minor = conn.status, 1 if request.version >= (1, 1) else 0
    length = response_length(conn.head)
    no_body = request.method == "HEAD" or status in (204, 304)
    chunked = length is None and not no_body and minor == 1
    keep_alive = request.keep_alive and (length is not None or chunked or no_body)
    head = response_head(minor=minor, status=status, head=conn.head, length=length, keep_alive=keep_alive)
    if chunked:
        head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
    try:
        ok = await client_request.stream(request, conn, head, chunked=chunked, limit=target.timeout, tee=tee)
    except BaseException:
        conn.abort()
        raise
    if ok:
        target.pool.release(conn)
    else:
        conn.abort()
        keep_alive = False
        if request.transport is not None:
            request.transport.abort()  # a truncated body must not look complete to the client
    return Streamed(status, keep_alive), ok


def whole(request: ClientRequest, conn: UpstreamConnection, pool: UpstreamPool) -> RawResponse:
    """The response arrived whole: one head + body write, no aiohttp response object."""
    status = conn.status
    no_body = request.method == "HEAD" or status in (204, 304)
    body = b"" if no_body else b"".join(conn.chunks)
    keep_alive = request.keep_alive
    head = response_head(
        minor=1 if request.version >= (1, 1) else 0,
        status=status,
        head=conn.head,
        length=None if no_body else len(body),
        keep_alive=keep_alive,
    )
    pool.release(conn)
    return RawResponse(status, head + body if body else head, keep_alive)


class RawResponse:
    """A fully serialised response, written to the client transport as it is (duck-types
    ``web.StreamResponse`` for aiohttp's ``finish_response``: ``prepare``, ``write_eof``, ``keep_alive``)."""

    __slots__ = ("_data", "keep_alive", "status")

    def __init__(self, status: int, data: bytes, keep_alive: bool) -> None:
        self.status = status
        self._data = data
        self.keep_alive = keep_alive

    @property
    def data(self) -> bytes:
        return self._data

    async def prepare(self, request: ClientRequest) -> None:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("client went away")
        transport.write(self._data)

    async def write_eof(self, data: bytes = b"") -> None:
        return None


async def _stream_body(
    resp: web.StreamResponse, conn: UpstreamConnection, limit: float, tee: Tee | None
) -> bool:
    while True:
        try:
            data = await conn.read_body(within=limit)
        except UpstreamError:
            return False
        if not data:
            return True
        if tee is not None:
            tee(data)
        await resp.write(data)
