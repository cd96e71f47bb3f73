"""A lean, pooled HTTP/1.1 upstream client: one asyncio Protocol per connection, httptools' C response parser.

Why not aiohttp's ``ClientSession``: it costs ~58 µs per request on the design machine (cookie jar, redirect
logic, decompression, header objects, tracing hooks); this client does only what a reverse proxy needs. It is
neutral by construction: it sends exactly the head the caller built and hands back the upstream's status,
raw headers and body bytes untouched (no cookies, no redirects, no decompression, no injected headers).

Connections live in a :class:`graylane.proxy.upstream.pool.UpstreamPool` (one per upstream ``scheme://host:port``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import httptools
from graylane.proxy.deadlines import NEVER
from graylane.proxy.upstream.headers import UpstreamHead

if TYPE_CHECKING:
    from graylane.proxy.upstream.pool import UpstreamPool

ErrorReason = Literal["connect", "reset", "timeout", "overflow", "protocol"]

BODY_HIGH_WATER = 256 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


# The client's answer when the upstream fails this way (before a response began; after it, the client's
# connection is cut instead).
ERROR_STATUS: dict[str, int] = {
    "overflow": 503,
    "timeout": 504,
    "connect": 502,
    "reset": 502,
    "protocol": 502,
}


def canary_falls_back(exc: UpstreamError, track: str) -> bool:
    """The canary refused or reset before answering: the request goes once more, to stable (a request
    whose body cannot be sent again is the caller's exception)."""
    return track == "canary" and exc.reason in ("connect", "reset") and exc.before_response


class UpstreamError(Exception):
    """The upstream could not produce a (complete) response.

    ``before_response`` is true when not one byte of the response had arrived (safe to retry when the
    request itself can be replayed).
    """

    def __init__(self, reason: ErrorReason, *, before_response: bool) -> None:
        super().__init__(reason)
        self.reason: ErrorReason = reason
        self.before_response = before_response


class UpstreamConnection:  # an asyncio protocol by duck typing (native: see server/connection.py)
    """One keep-alive connection; serves one request at a time.

    Two ways to wait for the answer: ``await conn.future()`` (the coroutine path), or a ``listener``
    callback, called once, right after the data that completed the response head (or an error) was
    parsed: the callback-driven fast path (``Exchange`` in ``routing/handler.py``), with no future and no
    task per request.
    """

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.listener: Callable[[UpstreamConnection], None] | None = None
        self.deadline = NEVER
        self.transport: asyncio.Transport | None = None
        self.connected = False  # connection_made ran (see UpstreamPool.open)
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.status = 0
        self.head = UpstreamHead()  # the response headers, sorted as they arrive (see on_header)
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.head_only = False
        self.read_to_close = False
        self.error: UpstreamError | None = None
        self.reusable = True  # False when the request was not sent whole (answered early)
        self._headers_done = False
        self._informational = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused = False
        self._reading_paused = False

    # -- asyncio.Protocol --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connected = True

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("protocol", before_response=not self._headers_done))
        except httptools.HttpParserError:
            self._fail(UpstreamError("protocol", before_response=not self._headers_done))
        if self.listener is not None:
            self._notify()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.connection_closed(self)
        if self._headers_done and not self.complete and self.read_to_close and exc is None:
            self.complete = True
            self.keep_alive = False
            self._wake()
        elif not self.complete and self.error is None:
            self.error = UpstreamError("reset", before_response=not self.received_any)
            self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_exception(UpstreamError("reset", before_response=not self.received_any))
        self.disarm()
        self._notify()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks --
    def on_header(self, name: bytes, value: bytes | None) -> None:
        self.head.received(name, value)  # counted and sorted once, as it arrives

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 1xx: drop it and wait for the final response (101 is never requested)
            self.head = self.head.after_informational()
            self._informational = True
            return
        self.status = status
        self._headers_done = True
        if self.head_only or status in _NO_BODY_STATUS:
            # httptools cannot be told "this answered a HEAD": finish here and never reuse the connection.
            self.complete = True
            self.keep_alive = False
        else:
            self.read_to_close = not self.head.framed
        if self._waiter is not None:
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > BODY_HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        if self._waiter is not None:
            self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive() and not self.read_to_close
        if self._waiter is not None:
            self._wake()

    # -- used by the forwarder --
    def start(self, *, head_only: bool) -> None:
        """Reset per-request state before sending a new request on this connection."""
        self.status = 0
        self.head = UpstreamHead()
        self.chunks = []
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.head_only = head_only
        self.read_to_close = False
        self.error = None
        self.reusable = True
        self._headers_done = False
        self._informational = False

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamError("reset", before_response=not self.received_any)
        if self._paused:
            self._drain = self.pool.loop.create_future()
            try:
                await self._drain
            finally:
                self._drain = None

    @property
    def headers_done(self) -> bool:
        return self._headers_done

    def future(self) -> asyncio.Future[None]:
        """A future the next protocol event resolves (await it directly: no coroutine frame)."""
        fut: asyncio.Future[None] = self.pool.loop.create_future()
        self._waiter = fut
        return fut

    async def read_body(self, *, within: float) -> bytes:
        """The next piece of body (all that is buffered), or b"" at the end of the response; the request
        timeout (``within`` seconds) runs while waiting for it."""
        self.arm(within)
        try:
            return await self._next_piece()
        finally:
            self.disarm()

    async def _next_piece(self) -> bytes:
        while True:
            if self.chunks:
                data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
                self.chunks = []
                self.buffered = 0
                if self._reading_paused and self.transport is not None and not self.closed:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self.future()

    def arm(self, seconds: float) -> None:
        """Start (or restart) the request timeout: :meth:`expire` runs when it passes."""
        deadlines = self.pool.deadlines
        self.deadline = deadlines.now() + seconds
        deadlines.watch(self)

    def disarm(self) -> None:
        if self.deadline != NEVER:
            self.deadline = NEVER
            self.pool.deadlines.forget(self)

    def expire(self) -> None:
        """The request timeout passed: fail whatever is waiting and drop the connection."""
        self.pool.deadlines.forget(self)
        if not self.complete:
            self._fail(UpstreamError("timeout", before_response=not self.received_any))
            self._notify()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # -- internals --
    def _notify(self) -> None:
        """Call the listener once the head is in (or the exchange failed)."""
        listener = self.listener
        if listener is not None and (self.error is not None or self._headers_done):
            self.listener = None
            listener(self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None  # later events of the same read skip the call (see the callbacks)
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self.keep_alive = False
        self._wake()
        self.abort()
