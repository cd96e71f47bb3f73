"""The client-facing HTTP server: aiohttp's low-level ``web.Server`` with the guards a proxy edge needs.

* Header-read timeout (aiohttp has none): a connection that started a request head and has not finished it
  within ``header_timeout`` seconds is closed (slowloris).
* Idle keep-alive timeout: aiohttp's ``keepalive_timeout``.
* Oversized request line / header field / too many headers: 431 (aiohttp answers 400).
* Error bodies carry the status line only: no parser message that echoes input, no traceback.

It is the reference server: every proxy test runs against it as well as against the fast one. aiohttp's
private internals the proxy leans on (``_request_in_progress``, ``_messages``, ``_kwargs``,
``site._server``) are used here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from graylane.proxy.answers import ErrorAnswer, error_body

log = logging.getLogger("graylane.proxy")

Handler = Callable[[web.BaseRequest], Awaitable[Any]]


def plain_error(status: int) -> web.Response:
    """The proxy's own answer (:mod:`graylane.proxy.answers`) as an aiohttp response."""
    return web.Response(status=status, text=error_body(status).decode(), headers={"Server": "graylane"})


def _own_answers(handler: Handler) -> Handler:
    """The routing code answers errors with a bare :class:`ErrorAnswer`; aiohttp wants a response."""

    async def handle(request: web.BaseRequest) -> Any:
        answer = await handler(request)
        if isinstance(answer, ErrorAnswer):
            resp = plain_error(answer.status)
            if answer.close:
                resp.force_close()
            return resp
        return answer

    return handle


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler plus a header-read deadline and neutral error answers."""

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_in_progress or self._messages:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
        elif data and self._header_timer is None:
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_deadline)

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

    def __init__(self, handler: Handler, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(
            _own_answers(handler), handler_cancellation=True, access_log=None, auto_decompress=False, **kwargs
        )
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self, loop=self._loop, header_timeout=self._header_timeout, **self._kwargs
        )


def bound_port(site: web.TCPSite) -> int:
    """The port a site listens on (after ``listen_port=0``)."""
    server = site._server  # aiohttp keeps the asyncio server here
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0
