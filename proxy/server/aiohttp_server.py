"""The client-facing HTTP server: aiohttp's low-level ``web.Server`` with the guards a proxy edge needs.

* Header-read timeout (aiohttp has none): a connection that started a request head and has not finished it
  within ``header_timeout`` seconds is closed (slowloris).
* Idle keep-alive timeout: aiohttp's ``keepalive_timeout``.
* Oversized request line / header field / too many headers: 431 (aiohttp answers 400).
* A whole request head over ``max_head`` bytes (``--max-head-bytes``): 431 and closed. aiohttp limits each
  line but not their sum, and holds an unfinished head in its parser: bytes that arrive while no body is
  being read and no new head completes are counted (a big read is fed in 16 KiB slices), so an unfinished
  head holds at most the limit plus one slice.
* A request asking for an upgrade (``h2c``, and WebSockets, which only the fast server tunnels) is answered
  as a plain request, then the connection closes (aiohttp would stop parsing after it and leave it open).
* Error bodies carry the status line only: no parser message that echoes input, no traceback.

It is the reference server: every proxy test runs against it as well as against the fast one. aiohttp's
private internals the proxy leans on (``_request_in_progress``, ``_messages``, ``_kwargs``,
``site._server``) are used here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from graylane.proxy.answers import ErrorAnswer, error_body, error_bytes
from graylane.proxy.server.head import HEAD_SLICE

log = logging.getLogger("graylane.proxy")

Handler = Callable[[web.BaseRequest], Awaitable[Any]]
LINGER_SECONDS = 2.0


def plain_error(status: int) -> web.Response:
    """The proxy's own answer (:mod:`graylane.proxy.answers`) as an aiohttp response."""
    return web.Response(status=status, text=error_body(status).decode(), headers={"Server": "graylane"})


def _own_answers(handler: Handler) -> Handler:
    """The routing code answers errors with a bare :class:`ErrorAnswer`; aiohttp wants a response."""

    async def handle(request: web.BaseRequest) -> Any:
        answer = await handler(request)
        if isinstance(answer, ErrorAnswer):
            resp = plain_error(answer.status)
            if answer.location:
                resp.headers["Location"] = answer.location
            if answer.close:
                resp.force_close()
            return resp
        return answer

    return handle


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler plus a header-read deadline and neutral error answers."""

    def __init__(self, manager: web.Server, *, header_timeout: float, max_head: int, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._max_head = max_head
        self._head_bytes = 0  # bytes of the unfinished head (reads that carried nothing else)
        self._body: Any = None  # the payload of the last request parsed

    def data_received(self, data: bytes) -> None:
        if len(data) <= HEAD_SLICE or self._reading_body():
            self._received(data)
        else:  # in slices, so that a head which begins in a big read is measured from the next slice on
            for start in range(0, len(data), HEAD_SLICE):
                self._received(data[start : start + HEAD_SLICE])

    def _received(self, data: bytes) -> None:
        if self._force_close:
            return  # refused (or closing): input is discarded
        in_body = self._reading_body()
        queued = self._request_count
        super().data_received(data)
        if self._request_count != queued:
            if self._messages:
                self._body = self._messages[-1][1]
            if any(getattr(msg, "upgrade", False) for msg, _ in self._messages):
                self.close()  # an upgrade (h2c; this server tunnels nothing): answer it, then close
        if self._request_count != queued or self._upgraded:
            self._head_bytes = 0  # a head completed (what follows it in this read is not counted)
        elif not in_body and data:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                self._head_too_large()
                return
        if self._request_in_progress or self._messages:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
        elif data and self._header_timer is None:
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_deadline)

    def _reading_body(self) -> bool:
        """Whether the next bytes belong to the body of the last request parsed (still being received)."""
        return self._body is not None and not self._body.is_eof()

    def _head_too_large(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self._request_in_progress or self._messages or not transport.can_write_eof():
            self.force_close()  # an answer is under way: no 431 in the middle of it; closes now
            return
        self._force_close = True  # (not force_close(), which closes at once) data_received discards input
        transport.write(_HEAD_TOO_LARGE)
        transport.write_eof()  # closed a little later, so unread input does not reset the answer away
        self._loop.call_later(LINGER_SECONDS, transport.close)

    def _header_deadline(self) -> None:
        self._header_timer = None
        if not self._request_in_progress and not self._messages and self.transport is not None:
            self.force_close()
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, LineTooLong) or (
            isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc.message)
        ):
            status = 431
        if isinstance(exc, ConnectionError):
            log.debug("client connection lost (%s)", type(exc).__name__)
        elif status >= 500:
            log.error("error handling a request", exc_info=exc)
        else:
            log.debug("rejected a malformed request (%s)", type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        resp = plain_error(status)
        resp.force_close()
        return resp


class GuardedServer(web.Server):
    """``web.Server`` whose connections are :class:`GuardedRequestHandler`."""

    def __init__(self, handler: Handler, *, header_timeout: float, max_head: int, **kwargs: Any) -> None:
        super().__init__(
            _own_answers(handler), handler_cancellation=True, access_log=None, auto_decompress=False, **kwargs
        )
        self._header_timeout = header_timeout
        self._max_head = max_head

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self, loop=self._loop, header_timeout=self._header_timeout, max_head=self._max_head,
            **self._kwargs,
        )  # fmt: skip


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` (the admin port) whose server is a :class:`GuardedServer`: the same head limits
    and header deadline as the data plane."""

    def __init__(self, app: web.Application, *, header_timeout: float, max_head: int, **kwargs: Any) -> None:
        super().__init__(app, handle_signals=False, **kwargs)
        self._header_timeout = header_timeout
        self._max_head = max_head

    async def _make_server(self) -> web.Server:
        app = self._app
        app._set_loop(asyncio.get_running_loop())
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        handler = cast(Handler, app._handle)  # a web.Request is the BaseRequest its factory makes
        return GuardedServer(
            handler, request_factory=app._make_request, header_timeout=self._header_timeout,
            max_head=self._max_head, **self._kwargs,
        )  # fmt: skip


_HEAD_TOO_LARGE = error_bytes(431)


def bound_port(site: web.TCPSite) -> int:
    """The port a site listens on (after ``listen_port=0``)."""
    server = site._server  # aiohttp keeps the asyncio server here
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0
