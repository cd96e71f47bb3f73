"""WebSocket tunnels (``--server fast``): the two halves of an upgraded connection.

``server/connection.py`` makes a :class:`Tunnel` when a request head asks for a WebSocket (``GET`` over
HTTP/1.1, ``Connection: upgrade``, ``Upgrade: websocket``, no body) and hands every later byte to it;
``upgrade.py`` asks the upstream (an :class:`UpstreamSide`) and, on a ``101``, splices the two. Then bytes
flow both ways untouched, with flow control (a side that cannot keep up pauses reading on the other), until
either side closes or nothing moves for ``--tunnel-idle-timeout`` seconds (the connection's deadline).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

import httptools
from graylane.proxy.request import FastRequest
from graylane.proxy.upstream.client import ErrorReason
from graylane.proxy.upstream.headers import UpstreamHead, connection_tokens

if TYPE_CHECKING:
    from graylane.proxy.upstream.pool import UpstreamPool

WEBSOCKET = b"websocket"
HELD_MAX = 64 * 1024  # client bytes held after the upgrade head while the upstream answers
REFUSAL_BODY_MAX = 1 << 20  # bytes of a non-101 answer to an upgrade request


class TunnelOwner(Protocol):
    """The client connection (``server.connection.Connection``): its deadline is the tunnel's idle timeout."""

    deadline: float
    tunnel: Tunnel | None


def asks_for_websocket(request: FastRequest) -> bool:
    """Whether the request head asks to upgrade to a WebSocket (and nothing else)."""
    if request.method != "GET" or request.version != (1, 1) or request.body_exists:
        return False
    upgrade: bytes | None = None
    asked = False
    for name, value in request.raw_headers:
        lower = name.lower()
        if lower == b"upgrade":
            if upgrade is not None:
                return False  # two Upgrade headers: ambiguous, not tunnelled
            upgrade = value.strip()
        elif lower == b"connection":
            asked = asked or b"upgrade" in connection_tokens(value)
    return asked and upgrade is not None and upgrade.lower() == WEBSOCKET


class UpstreamSide:  # an asyncio protocol: the upgrade's answer, then the upstream half of the tunnel
    def __init__(self, loop: asyncio.AbstractEventLoop, pool: UpstreamPool) -> None:
        self.pool = pool  # one of its maxConnections is this connection's (see UpstreamPool.open)
        self.connected = False
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head = UpstreamHead()
        self.upgrade = b""
        self.status = 0
        self.body: list[bytes] = []
        self.body_size = 0
        self.received_any = False
        self.error: ErrorReason | None = None
        self.early = b""  # bytes after the 101 head (the upstream's first frames)
        self.tunnel: Tunnel | None = None
        self.answered: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connected = True  # from now on connection_lost gives back the pool slot

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.to_client(data)
            return
        if self.status == 101:  # after the 101, before the splice (same loop turn, normally)
            self.early += data
            return
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.early = data[int(upgrade.args[0]) :]
            self._answer(None)
        except httptools.HttpParserError:
            self._answer("protocol")

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        self.pool.connection_closed(self)
        self._answer("reset")
        if self.tunnel is not None:
            self.tunnel.close()

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.client.pause_reading()

    def resume_writing(self) -> None:
        if self.tunnel is not None and not self.tunnel.client.is_closing():
            self.tunnel.client.resume_reading()

    def on_header(self, name: bytes, value: bytes | None) -> None:
        self.head.received(name, value)
        if len(name) == len(b"upgrade") and name.lower() == b"upgrade":
            self.upgrade = (value or b"").strip()

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.head = self.head.after_informational()  # wait for the real answer
            return
        self.status = status

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > REFUSAL_BODY_MAX:
            raise ValueError("answer to an upgrade too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.status:
            self._answer(None)

    def _answer(self, error: ErrorReason | None) -> None:
        if not self.answered.done():
            self.error = error
            self.answered.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Tunnel:
    """One upgraded client connection: holds what the client sends until the upstream's 101 (reading pauses
    above ``HELD_MAX``), then both halves spliced; ``done`` resolves once it has closed."""

    def __init__(self, owner: TunnelOwner, client: asyncio.Transport, idle: float) -> None:
        self.owner, self.client, self.idle = owner, client, idle
        self.upstream: UpstreamSide | None = None
        self.held: list[bytes] = []
        self.held_size = 0
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()

    def from_client(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is None:  # the upstream has not said 101 yet
            self.held.append(data)
            self.held_size += len(data)
            if self.held_size > HELD_MAX and not self.client.is_closing():
                self.client.pause_reading()
        elif upstream.transport is not None:
            upstream.transport.write(data)
            self.owner.deadline = self.loop.time() + self.idle

    def to_client(self, data: bytes) -> None:
        if not self.client.is_closing():
            self.client.write(data)
            self.owner.deadline = self.loop.time() + self.idle

    def splice(self, upstream: UpstreamSide) -> None:
        """The upstream said 101: from now on bytes flow both ways."""
        self.upstream, upstream.tunnel = upstream, self
        self.owner.deadline = self.loop.time() + self.idle
        held, self.held = self.held, []
        for chunk in held:
            self.from_client(chunk)
        if upstream.early:
            self.to_client(upstream.early)
        if upstream.transport is None:  # it closed right after its 101
            self.close()
        elif not self.client.is_closing():
            self.client.resume_reading()

    def pause_upstream(self, paused: bool) -> None:
        """The client cannot keep up (its transport's buffer is full): stop reading from the upstream."""
        transport = self.upstream.transport if self.upstream is not None else None
        if transport is None or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def close(self) -> None:
        """Either side closed, or the idle deadline passed: close both (buffered bytes are flushed first)."""
        if self.upstream is not None:
            self.upstream.close()
        if not self.client.is_closing():
            self.client.close()
        if not self.done.done():
            self.done.set_result(None)


__all__ = ["HELD_MAX", "WEBSOCKET", "Tunnel", "TunnelOwner", "UpstreamSide", "asks_for_websocket"]
