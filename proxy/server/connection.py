"""One client connection of the fast data-plane server (see ``server/protocol.py``): httptools callbacks (the
head itself is collected and checked by ``head.RequestHead``), the header/idle deadlines, flow control,
and answering the connection's requests in order.

No task per connection: after each read, :meth:`Connection._dispatch` hands the next queued request to
``handler.dispatch``, which answers at once, hands back a coroutine (run as a task), or starts an
``Exchange`` that reports back through ``exchange_done`` / ``exchange_continues``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, cast

import httptools
from aiohttp import web
from graylane.proxy.answers import ErrorAnswer, error_bytes
from graylane.proxy.deadlines import NEVER
from graylane.proxy.request import ClientGone, FastRequest, Streamed, StreamWriter
from graylane.proxy.server.head import HEAD_SLICE, BadBody, Reject, RequestHead
from graylane.proxy.upstream.forward import RawResponse
from graylane.proxy.websocket.tunnel import Tunnel, asks_for_websocket

if TYPE_CHECKING:
    from graylane.proxy.routing.handler import Answer, Exchange
    from graylane.proxy.server.protocol import FastServer

log = logging.getLogger("graylane.proxy")

LINGER_SECONDS = 2.0


class Connection:  # an asyncio protocol by duck typing: no base class, so mypyc compiles it native
    """One client connection: parses requests, answers them in order."""

    def __init__(self, server: FastServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._writer: StreamWriter | None = None
        self._remote = ""
        self._queue: deque[FastRequest | int] = deque()
        self._task: asyncio.Task[None] | None = None  # the request on the coroutine path, if any
        self.exchange: Exchange | None = None  # the request on the callback path, if any
        self.tunnel: Tunnel | None = None  # a WebSocket upgrade (tunnel.py): raw bytes from now on
        self.deadline = NEVER
        self._current: FastRequest | None = None  # the request whose body is being parsed
        self._head = RequestHead(
            max_line=server.max_line, max_headers=server.max_headers, max_head=server.max_head
        )
        self._in_head = False
        self._busy = False
        self._broken = False  # a parse error: no more requests from this connection
        self._paused = False
        self._dispatching = False
        self._done = False  # closing: no more requests are answered
        self._rejected = 0  # the status a parser callback refused the request with

    # -- transport events ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._transport = transport
        self._writer = StreamWriter(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answers are whole: no Nagle wait
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, tuple) else ""
        self._server.connections.add(self)
        self._server.deadlines.watch(self)
        self._arm(self._server.settings.header_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._server.discard(self)
        self._server.deadlines.forget(self)
        self._disarm()
        if self._current is not None:
            self._current.content.finish(ClientGone("client went away"))
        if self._writer is not None:
            self._writer.lost()
        self._transport = None
        if self.exchange is not None:
            self.exchange.cancel()
            self.exchange = None
        if self.tunnel is not None:
            self.tunnel.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def eof_received(self) -> bool | None:
        """The client shut its sending side: close (asyncio's default; the SSL protocols ask for it)."""
        return None

    def pause_writing(self) -> None:
        if self._writer is not None:
            self._writer.set_paused(True)
        if self.tunnel is not None:
            self.tunnel.pause_upstream(True)

    def resume_writing(self) -> None:
        if self._writer is not None:
            self._writer.set_paused(False)
        if self.tunnel is not None:
            self.tunnel.pause_upstream(False)
        if not self._busy:
            self._dispatch()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_client(data)
            return
        if len(data) <= HEAD_SLICE:
            self._feed(data)
        else:  # in slices: a head that begins in a big read is measured from the next slice on
            for start in range(0, len(data), HEAD_SLICE):
                self._feed(data[start : start + HEAD_SLICE])
        if not self._busy and (self._queue or self._broken):
            self._dispatch()

    def _feed(self, data: bytes) -> None:
        """Parse one read (or slice of one). The head's size is bounded twice: exactly by its complete lines
        (``RequestHead.parsed``), and by the reads that arrive while it is unfinished (a header line still
        in progress lives in the parser), so an unfinished head holds at most the limit plus one slice."""
        if self.tunnel is not None:
            self.tunnel.from_client(data)
            return
        if self._broken:
            return
        if not self._busy and not self._in_head:
            self._disarm()  # the idle timer; on_message_begin arms the header deadline
        head = self._head
        head.began = False
        try:
            self._parser.feed_data(data)
            if self._in_head and not head.began:  # the whole read belongs to this head
                head.size += len(data)
                if head.size > head.max_head:
                    raise self._reject(431)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[int(upgrade.args[0]) :])
        except Reject as rejected:
            self._fail(rejected.status)
        except httptools.HttpParserCallbackError:
            self._fail(self._rejected or 400)  # a callback refused the request (or failed: 400)
        except httptools.HttpParserError:
            self._fail(400)

    # -- parser callbacks (httptools) ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head.begin()
        self._arm(self._server.settings.header_timeout)

    def on_url(self, url: bytes) -> None:
        refused = self._head.add_url(url)
        if refused:
            raise self._reject(refused)

    def on_header(self, name: bytes, value: bytes) -> None:
        refused = self._head.add_header(name, value)
        if refused:
            raise self._reject(refused)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self._busy:
            self._disarm()
        assert self._transport is not None
        request = self._head.request(self._parser, keep_alive=not self._server.draining, conn=self,
                                     transport=self._transport, remote=self._remote)  # fmt: skip
        if isinstance(request, int):
            raise self._reject(request)
        self._current = request if request.body_exists else None
        self._queue.append(request)

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.content.feed(body)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.content.finish()
            self._current = None

    def _upgrade(self, rest: bytes) -> None:
        """An upgrade head: a WebSocket's bytes go to its tunnel from now on (held until the upstream says
        101); anything else (h2c) is answered as a plain request, and nothing after it is read."""
        request = self._queue[-1] if self._queue else None
        settings = self._server.settings
        if (
            isinstance(request, FastRequest)
            and settings.websockets
            and self._transport is not None
            and asks_for_websocket(request)
        ):
            request.upgrade = True
            self.tunnel = Tunnel(self, self._transport, settings.tunnel_idle_timeout)
            self.tunnel.from_client(rest)
        else:
            self._fail(None)

    def _reject(self, status: int) -> Reject:
        """The refusal to raise from a parser callback (noted here: httptools wraps what callbacks raise)."""
        self._rejected = status
        return Reject(status)

    # -- flow control and timers -----------------------------------------------------------------------

    def pause_body(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def resume_body(self) -> None:
        if self._paused and not self._broken and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _arm(self, seconds: float) -> None:
        self.deadline = self._loop.time() + seconds  # checked by the server's Deadlines sweep

    def _disarm(self) -> None:
        self.deadline = NEVER

    def expire(self) -> None:
        """Header deadline, idle keep-alive, linger or an idle tunnel passed: close without an answer."""
        if self.tunnel is not None:
            self.tunnel.close()
            return
        if not self._busy and not self._queue and self._transport is not None:
            self._transport.close()

    def _fail(self, status: int | None) -> None:
        """Stop reading; a body in progress breaks (its handler answers 400), a bad head is answered."""
        self._broken = True
        self._in_head = False
        if self._transport is not None:
            self._transport.pause_reading()
        if self._current is not None:
            self._current.content.finish(BadBody())
            self._current = None
        elif status is not None:
            self._queue.append(status)

    def close_if_idle(self) -> None:
        if not self._busy and not self._queue and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- answering -------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Answer queued requests in order, one at a time; idle: arm the header or keep-alive deadline."""
        if self._dispatching:
            return  # a request finished while starting: the loop below goes on
        self._dispatching = True
        try:
            queue = self._queue
            while not self._busy and not self._done and self._transport is not None:
                if not queue:
                    if self._broken or self._server.closing:
                        self._close()
                    else:
                        settings = self._server.settings
                        self._arm(settings.header_timeout if self._in_head else settings.idle_timeout)
                    return
                if self._writer is not None and self._writer.paused:
                    return  # resume_writing() dispatches the next one
                item = queue.popleft()
                if isinstance(item, int):
                    self._transport.write(error_bytes(item))
                    self._close()
                    return
                self._busy = True
                self._disarm()
                self._start(item)
        finally:
            self._dispatching = False

    def _start(self, request: FastRequest) -> None:
        request.writer = self._writer
        try:
            answer = self._server.handler.dispatch(request, self)
        except Exception:
            self._crashed(request)
            return
        if answer is None:
            return  # an Exchange has it: exchange_done() or exchange_continues() follows
        if isinstance(answer, RawResponse | Streamed | ErrorAnswer | web.StreamResponse):
            self._deliver(request, answer)
        else:
            self._task = self._loop.create_task(self._serve(request, answer))

    def exchange_done(self, request: FastRequest, answer: Answer) -> None:
        self._deliver(request, answer)
        if not self._dispatching:
            self._dispatch()

    def exchange_continues(self, request: FastRequest, rest: Awaitable[Answer]) -> None:
        self._task = self._loop.create_task(self._serve(request, rest))

    async def _serve(self, request: FastRequest, rest: Awaitable[Answer]) -> None:
        """The coroutine path of one request: await the answer, write it, go on with the next."""
        try:
            answer = await rest
        except (ConnectionError, ClientGone):
            self._finished(False)
            return
        except Exception:
            self._crashed(request)
            return
        self._deliver(request, answer)
        self._dispatch()

    def _crashed(self, request: FastRequest) -> None:
        log.error("error handling a request", exc_info=True)
        if self._transport is not None and self._writer is not None and not self._writer.started:
            self._transport.write(error_bytes(500, head_only=request.method == "HEAD"))
        self._finished(False)

    def _deliver(self, request: FastRequest, answer: Answer) -> None:
        """Write an answer (or account for one already streamed) and finish the request."""
        transport, writer = self._transport, self._writer
        if transport is None or writer is None or transport.is_closing():
            self._finished(False)  # the client went away meanwhile
            return
        if isinstance(answer, RawResponse):
            writer.write(answer.data)
            keep = answer.keep_alive
        elif isinstance(answer, Streamed):
            keep = answer.keep_alive
        elif isinstance(answer, ErrorAnswer):  # the proxy's own answer: written here, no response object
            keep = request.keep_alive and not answer.close
            head_only = request.method == "HEAD"
            writer.write(
                error_bytes(answer.status, head_only=head_only, keep_alive=keep, location=answer.location)
            )
        else:  # an aiohttp response: only requests of the aiohttp server are answered with one
            self._crashed(request)
            return
        self._finished(keep and request.content.eof and not self._server.closing)

    def _finished(self, keep: bool) -> None:
        self._busy = False
        self._task = None
        if not keep:
            self._close()

    def _close(self) -> None:
        """Close; when unread client bytes may remain, shut the write side and discard input first, so
        the kernel does not answer them with a reset that destroys the response just written."""
        transport = self._transport
        if transport is None or self._done:
            return
        self._done = True
        if not (self._broken or self._current is not None) or not transport.can_write_eof():
            transport.close()
            return
        self._broken = True  # everything read from now on is discarded
        self._current = None
        self._queue.clear()
        transport.write_eof()
        transport.resume_reading()
        self._arm(LINGER_SECONDS)  # then closed by expire(), or at once when the client closes
