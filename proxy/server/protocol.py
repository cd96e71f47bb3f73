"""The fast data-plane server (``--server fast``): an asyncio ``Protocol`` with httptools' request parser
(llhttp, strict: no lenient flag is ever set), feeding the same
:class:`~graylane.proxy.routing.handler.ProxyHandler` as the aiohttp server.

Each connection answers its requests in order (pipelining), driven by protocol callbacks (see
``server/connection.py``); request bodies reach the handler through a
:class:`~graylane.proxy.request.BodyStream` that pauses reading above a high-water mark. The
guards the aiohttp server has are here too: header-read deadline and idle timeout (close without an
answer), 431 for a request line or header field over the limit, more headers than allowed or a head over
the total limit, 400 for anything llhttp rejects plus what it accepts but a proxy must not (a second
``Host``, a ``Transfer-Encoding`` other than one ``chunked``, ``CONNECT``). Error answers carry the status
line only and close the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from graylane.proxy.deadlines import Deadlines
from graylane.proxy.server.connection import Connection
from graylane.proxy.settings import Settings

if TYPE_CHECKING:
    from graylane.proxy.routing.handler import ProxyHandler


class FastServer:
    """The listener and its connections; ``shutdown`` closes idle ones and waits for busy ones."""

    def __init__(self, handler: ProxyHandler, settings: Settings, *, deadlines: Deadlines) -> None:
        self.handler = handler
        self.settings = settings
        self.deadlines = deadlines
        self.max_line = settings.max_header_line
        self.max_headers = settings.max_headers
        self.max_head = settings.max_head_bytes
        self.connections: set[Connection] = set()
        self.closing = False
        self.draining = False
        """Set by ``drain``: answers carry ``Connection: close`` while the listener still accepts."""
        self.all_closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool, ssl: SSLContext | None = None) -> int:
        """Listen; with ``ssl``, HTTPS (a handshake must finish within the header timeout)."""
        loop = asyncio.get_running_loop()
        factory: Any = lambda: Connection(self)  # noqa: E731 -- a protocol by duck typing (see connection.py)
        timeout = self.settings.header_timeout if ssl is not None else None
        self._server = await loop.create_server(
            factory, host, port, reuse_port=reuse_port or None, backlog=1024, ssl=ssl,
            ssl_handshake_timeout=timeout,
        )  # fmt: skip
        return int(self._server.sockets[0].getsockname()[1])

    def drain(self) -> None:
        """From now on every answer closes its connection, so keep-alive clients reconnect (to another
        endpoint, once this one has left the Service) before the listener closes, instead of meeting a
        connection closed under a request they were sending."""
        self.draining = True

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, close idle connections, give busy ones ``grace`` seconds, then abort."""
        self.closing = self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        if self.connections:
            self.all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.all_closed.wait()
        for conn in list(self.connections):
            conn.abort()

    def discard(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self.all_closed.set()
