"""Keep-alive connections to one upstream ``scheme://host:port``, bounded by ``max_connections``.

The bound counts idle, busy and connecting connections; a request over it fails at once with reason
``overflow`` (the proxy answers 503 without queueing). Idle connections are reused last-in first-out; one
the upstream closed meanwhile drops out of the idle list when its ``connection_lost`` arrives. A retired
pool (its upstream left the route table) closes idle connections now and busy ones when released.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Protocol, TypeVar

from graylane.proxy.deadlines import Deadlines
from graylane.proxy.upstream.client import UpstreamConnection, UpstreamError


class Opened(Protocol):
    """A connection protocol the pool counts: ``connected`` once ``connection_made`` ran; its
    ``connection_lost`` calls :meth:`UpstreamPool.connection_closed` (which gives the slot back)."""

    connected: bool

    def abort(self) -> None: ...


P = TypeVar("P", bound=Opened)


_TLS: list[ssl.SSLContext] = []


def _ascii_or_idna(authority: str) -> bytes:
    """The authority as sent in ``Host``: ASCII as is (almost always; the idna codec is slow Python),
    otherwise IDNA-encoded."""
    return authority.encode("ascii") if authority.isascii() else authority.encode("idna")


def default_tls() -> ssl.SSLContext:
    """The client TLS context of every https upstream (system trust store, hostname checked): one per process,
    made on first use -- a context per pool would cost each of 10,000 upstreams its own copy of the store."""
    if not _TLS:
        _TLS.append(ssl.create_default_context())
    return _TLS[0]


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
        self.ssl: ssl.SSLContext | None = default_tls() if scheme == "https" else None
        self.idle: list[UpstreamConnection] = []
        self.size = 0
        self.retired = False
        default_port = 443 if scheme == "https" else 80
        bracketed = f"[{host}]" if ":" in host else host
        self.authority = _ascii_or_idna(bracketed if port == default_port else f"{bracketed}:{port}")

    def take_idle(self) -> UpstreamConnection | None:
        """An idle keep-alive connection, if there is one (no await on the hot path)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        """A new keep-alive connection for requests."""
        return await self.open(UpstreamConnection(self))

    async def open(self, protocol: P) -> P:
        """Connect ``protocol`` (a pooled connection, or a WebSocket tunnel's upstream half): one of
        ``max_connections`` from now until its ``connection_lost``; over the bound, ``overflow`` at once."""
        if self.size >= self.max_connections:
            raise UpstreamError("overflow", before_response=True)
        self.size += 1  # reserved now; given back by connection_lost once connected, else below
        factory: Any = lambda: protocol  # noqa: E731 -- a protocol by duck typing (compiles to a native class)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.loop.create_connection(
                    factory,
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except BaseException as exc:
            if protocol.connected:
                protocol.abort()  # its connection_lost gives the slot back
            else:
                self.size -= 1
            if isinstance(exc, TimeoutError):
                raise UpstreamError("timeout", before_response=True) from None
            if isinstance(exc, OSError):
                raise UpstreamError("connect", before_response=True) from None
            raise
        return protocol

    def release(self, conn: UpstreamConnection) -> None:
        """Give back a connection after its response was read to the end (or drop it)."""
        if conn.closed:
            return
        if conn.complete and conn.keep_alive and conn.reusable and not conn.error and not self.retired:
            self.idle.append(conn)
        else:
            conn.abort()

    def connection_closed(self, conn: Opened) -> None:
        """A counted connection is gone: its slot is free again."""
        self.size -= 1
        if isinstance(conn, UpstreamConnection) and conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        """Retire the pool: close idle connections now, busy ones when they are released."""
        self.retired = True
        for conn in list(self.idle):
            conn.abort()
        self.idle.clear()
