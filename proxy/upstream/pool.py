"""Keep-alive connections to one upstream ``scheme://host:port``, bounded by ``max_connections``.

The bound counts idle, busy and connecting connections; a request over it fails at once with reason
``overflow`` (the proxy answers 503 without queueing). Idle connections are reused last-in first-out; one
the upstream closed meanwhile drops out of the idle list when its ``connection_lost`` arrives. A retired
pool (its upstream left the route table) closes idle connections now and busy ones when released.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from graylane.proxy.deadlines import Deadlines
from graylane.proxy.upstream.client import UpstreamConnection, UpstreamError


class UpstreamPool:
    """Keep-alive connections to one upstream ``scheme://host:port``."""

    def __init__(
        self,
        *,
        scheme: str,
        host: str,
        port: int,
        max_connections: int,
        connect_timeout: float,
        loop: asyncio.AbstractEventLoop,
        deadlines: Deadlines,
    ) -> None:
        self.host = host
        self.deadlines = deadlines
        self.port = port
        self.loop = loop
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if scheme == "https" else None
        self.idle: list[UpstreamConnection] = []
        self.size = 0
        self.retired = False
        default_port = 443 if scheme == "https" else 80
        bracketed = f"[{host}]" if ":" in host else host
        self.authority = (bracketed if port == default_port else f"{bracketed}:{port}").encode("idna")

    def take_idle(self) -> UpstreamConnection | None:
        """An idle keep-alive connection, if there is one (no await on the hot path)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        if self.size >= self.max_connections:
            raise UpstreamError("overflow", before_response=True)
        self.size += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await self.loop.create_connection(
                    self._protocol_factory(),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            self.size -= 1
            raise UpstreamError("timeout", before_response=True) from None
        except OSError:
            self.size -= 1
            raise UpstreamError("connect", before_response=True) from None
        except BaseException:
            self.size -= 1
            raise
        conn: UpstreamConnection = protocol
        return conn

    def _protocol_factory(self) -> Any:
        """``UpstreamConnection`` is an asyncio protocol by duck typing (no base class, so it compiles to a
        native class); the event loop's stubs want a ``BaseProtocol``."""
        return lambda: UpstreamConnection(self)

    def release(self, conn: UpstreamConnection) -> None:
        """Give back a connection after its response was read to the end (or drop it)."""
        if conn.closed:
            return
        if conn.complete and conn.keep_alive and conn.reusable and not conn.error and not self.retired:
            self.idle.append(conn)
        else:
            conn.abort()

    def connection_closed(self, conn: UpstreamConnection) -> None:
        self.size -= 1
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        """Retire the pool: close idle connections now, busy ones when they are released."""
        self.retired = True
        for conn in list(self.idle):
            conn.abort()
        self.idle.clear()
