"""One client connection of the fast data-plane server (see ``fastserver.py``): httptools callbacks, the
header/idle deadlines, flow control, and the task that answers the connection's requests in order."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import httptools
from aiohttp import web
from graylane.proxy.fastrequest import ClientGone, FastRequest, Streamed, StreamWriter
from graylane.proxy.forward import RawResponse

if TYPE_CHECKING:
    from graylane.proxy.fastserver import FastServer

log = logging.getLogger("graylane.proxy")

_METHODS: dict[bytes, str] = {}
_VERSIONS = {"1.1": (1, 1), "1.0": (1, 0)}
LINGER_SECONDS = 2.0


class Reject(Exception):
    """A request the proxy refuses while parsing its head: answered with ``status``, then closed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class BadBody(Exception):
    """The request body broke its framing."""


def error_bytes(status: int, *, head_only: bool = False, keep_alive: bool = False) -> bytes:
    """A proxy-generated answer: the status line as the body, nothing else."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = f"{status} {phrase}\n".encode()
    close = "" if keep_alive else "Connection: close\r\n"
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nServer: graylane\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{close}\r\n"
    ).encode()
    return head if head_only else head + body


class Connection(asyncio.Protocol):
    """One client connection: parses requests, answers them in order."""

    def __init__(self, server: FastServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._writer: StreamWriter | None = None
        self._remote = ""
        self._queue: deque[FastRequest | int] = deque()
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._current: FastRequest | None = None  # the request whose body is being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._hosts = 0
        self._head_bytes = 0
        self._in_head = False
        self._busy = False
        self._broken = False  # a parse error: no more requests from this connection
        self._paused = False

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
        self._arm(self._server.settings.header_timeout)
        self._task = self._loop.create_task(self._run())

    def connection_lost(self, exc: BaseException | None) -> None:
        self._server.discard(self)
        self._disarm()
        if self._current is not None:
            self._current.content.finish(ClientGone("client went away"))
        if self._writer is not None:
            self._writer.lost()
        self._transport = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def pause_writing(self) -> None:
        if self._writer is not None:
            self._writer.set_paused(True)

    def resume_writing(self) -> None:
        if self._writer is not None:
            self._writer.set_paused(False)

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        if not self._busy and not self._in_head:
            self._disarm()  # the idle timer; on_message_begin arms the header deadline
        try:
            self._parser.feed_data(data)
            if self._in_head:
                self._head_bytes += len(data)
                if self._head_bytes > self._server.max_head:
                    raise Reject(431)
        except httptools.HttpParserUpgrade:
            self._fail(None)  # the request itself is answered; nothing after it is read
        except Reject as exc:
            self._fail(exc.status)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause.status if isinstance(cause, Reject) else 400)
        except httptools.HttpParserError:
            self._fail(400)

    # -- parser callbacks (httptools) ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = b""
        self._headers = []
        self._hosts = 0
        self._head_bytes = 0
        self._arm(self._server.settings.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._server.max_line:
            raise Reject(431)

    def on_header(self, name: bytes, value: bytes) -> None:
        limit = self._server.max_line
        if len(name) > limit or len(value) > limit or len(self._headers) >= self._server.max_headers:
            raise Reject(431)
        if len(name) == 4 and name.lower() == b"host":
            self._hosts += 1
            if self._hosts > 1:
                raise Reject(400)
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self._busy:
            self._disarm()
        assert self._transport is not None
        request = self._request(self._parser, self._transport)
        self._current = request if request.body_exists else None
        self._queue.append(request)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.content.feed(body)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.content.finish()
            self._current = None

    def _request(self, parser: Any, transport: asyncio.Transport) -> FastRequest:
        method_raw: bytes = parser.get_method()
        method = _METHODS.get(method_raw)
        if method is None:
            if method_raw == b"CONNECT":
                raise Reject(400)
            method = _METHODS.setdefault(method_raw, method_raw.decode("ascii"))
        te = [v for n, v in self._headers if len(n) == 17 and n.lower() == b"transfer-encoding"]
        if te and (len(te) > 1 or te[0].strip().lower() != b"chunked"):
            raise Reject(400)
        length = None
        if not te:
            for n, v in self._headers:
                if len(n) == 14 and n.lower() == b"content-length":
                    length = int(v)  # llhttp accepted it: digits only, one header
        version = _VERSIONS.get(parser.get_http_version()) or (1, 0)
        return FastRequest(
            method=method, target=self._url, raw_headers=tuple(self._headers), version=version,
            keep_alive=parser.should_keep_alive() and not self._server.closing,
            content_length=length, chunked=bool(te), conn=self, transport=transport, remote=self._remote,
        )  # fmt: skip

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
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(seconds, self._deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deadline(self) -> None:
        self._timer = None
        if not self._busy and not self._queue and self._transport is not None:
            self._transport.close()  # header deadline or idle keep-alive: closed without an answer

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
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close_if_idle(self) -> None:
        if not self._busy and not self._queue and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- answering -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        queue = self._queue
        while self._transport is not None:
            if not queue:
                if self._broken or self._server.closing:
                    break
                settings = self._server.settings
                self._arm(settings.header_timeout if self._in_head else settings.idle_timeout)
                self._waiter = self._loop.create_future()
                await self._waiter
                self._waiter = None
                continue
            item = queue.popleft()
            if isinstance(item, int):
                self._transport.write(error_bytes(item))
                break
            self._busy = True
            keep = await self._serve(item)
            self._busy = False
            if not keep:
                break
        self._close()

    def _close(self) -> None:
        """Close; when unread client bytes may remain, shut the write side and discard input first, so
        the kernel does not answer them with a reset that destroys the response just written."""
        transport = self._transport
        if transport is None:
            return
        if not (self._broken or self._current is not None) or not transport.can_write_eof():
            transport.close()
            return
        self._broken = True  # everything read from now on is discarded
        self._current = None
        self._queue.clear()
        transport.write_eof()
        transport.resume_reading()
        self._arm(LINGER_SECONDS)  # then closed by _deadline, or at once when the client closes

    async def _serve(self, request: FastRequest) -> bool:
        """Answer one request; False when the connection must close after it."""
        assert self._transport is not None and self._writer is not None
        request.writer = self._writer
        try:
            answer: RawResponse | Streamed | web.StreamResponse = await self._server.handler(request)
        except (ConnectionError, ClientGone):
            return False
        except Exception:
            log.error("error handling a request", exc_info=True)
            if not self._writer.started:
                self._transport.write(error_bytes(500, head_only=request.method == "HEAD"))
            return False
        if self._transport.is_closing():
            return False  # the client went away meanwhile
        if isinstance(answer, RawResponse):
            self._writer.write(answer.data)
            keep = answer.keep_alive
        elif isinstance(answer, Streamed):
            keep = answer.keep_alive
        else:  # plain_error(): the handler's own answers
            keep = request.keep_alive and answer.keep_alive is not False
            head_only = request.method == "HEAD"
            self._writer.write(error_bytes(answer.status, head_only=head_only, keep_alive=keep))
        if self._writer.paused:
            try:
                await self._writer.drain()
            except ClientGone:
                return False
        return keep and request.content.eof and not self._server.closing
