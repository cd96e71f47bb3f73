"""WebSocket tunnels (``--server fast``): an upgrade request is routed like any other, then spliced.

A ``GET`` over HTTP/1.1 with ``Connection: upgrade`` and ``Upgrade: websocket`` is decided as usual (rules,
JWT claims, the sticky split: a user's sockets go where their requests go). The proxy opens a fresh
connection to the chosen upstream (never a pooled one), sends the head with ``Connection: Upgrade`` and
the client's ``Upgrade``, and waits for the answer within the upstream's ``timeoutSeconds``:

* ``101`` with ``Upgrade: websocket``: the client gets the 101 (end-to-end headers such as
  ``Sec-WebSocket-Accept`` kept), then bytes flow both ways untouched, with flow control (a side that
  cannot keep up pauses reading on the other), until either side closes or nothing moves for
  ``--tunnel-idle-timeout`` seconds. Counted once, as code ``101``, when the tunnel opens.
* any other answer (a refusal, ``426``, a redirect): forwarded to the client (body up to 1 MiB), and the
  connection is closed, since what the client sent after its head was meant for the new protocol.
* refused / reset before answering: the canary falls back to stable once, as plain requests do; otherwise
  502, or 504 on timeout. An open tunnel holds one of the upstream's ``maxConnections``: over it, 503.

Other upgrades (``h2c``: request smuggling through proxies) are not tunnelled: the request goes on without
``Upgrade``, and the connection closes after the answer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import httptools
from graylane.proxy import forward
from graylane.proxy.fastrequest import ClientGone, FastRequest, Streamed
from graylane.proxy.headers import (
    RESPONSE_DROP,
    UpstreamHead,
    build_request_head,
    connection_tokens,
    response_head,
)
from graylane.proxy.server import plain_error
from graylane.proxy.upstream import MAX_RESPONSE_HEAD, ErrorReason, UpstreamError

if TYPE_CHECKING:
    from graylane.proxy.handler import Answer, ProxyHandler, Routed
    from graylane.proxy.pool import UpstreamPool

WEBSOCKET = b"websocket"
REFUSAL_BODY_MAX = 1 << 20  # bytes of a non-101 answer to an upgrade request
_STATUS = {"timeout": 504, "connect": 502, "reset": 502, "protocol": 502, "overflow": 503}


class TunnelOwner(Protocol):
    """The client connection (``fastconn.Connection``)."""

    deadline: float

    def attach_tunnel(self, tunnel: Tunnel) -> list[bytes]: ...


def websocket_upgrade(request: FastRequest) -> bytes | None:
    """The client's ``Upgrade`` value when the request asks for a WebSocket, else None."""
    if request.method != "GET" or request.version != (1, 1) or request.body_exists:
        return None
    upgrade: bytes | None = None
    asked = False
    for name, value in request.raw_headers:
        lower = name.lower()
        if lower == b"upgrade":
            if upgrade is not None:
                return None  # two Upgrade headers: ambiguous, not tunnelled
            upgrade = value.strip()
        elif lower == b"connection":
            asked = asked or b"upgrade" in connection_tokens(value)
    return upgrade if asked and upgrade is not None and upgrade.lower() == WEBSOCKET else None


class UpstreamSide:  # an asyncio protocol: the upgrade's answer, then the upstream half of the tunnel
    def __init__(self, loop: asyncio.AbstractEventLoop, pool: UpstreamPool) -> None:
        self.pool = pool  # its size counts this connection while it is open
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head = UpstreamHead()
        self.head_bytes = 0
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
        self.pool.size -= 1
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
        value = value or b""
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_RESPONSE_HEAD:
            raise ValueError("response head too large")  # a parser error: protocol
        lower = name.lower()
        if lower == b"upgrade":
            self.upgrade = value.strip()
        if lower in RESPONSE_DROP:
            self.head.drop(lower, value)
        else:
            self.head.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.head, self.head_bytes = UpstreamHead(), 0  # informational: wait for the real answer
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


class Tunnel:
    """Both halves of one spliced connection; ``done`` resolves when it has closed."""

    def __init__(
        self, owner: TunnelOwner, client: asyncio.Transport, upstream: UpstreamSide, idle: float
    ) -> None:
        self.owner, self.client, self.upstream, self.idle = owner, client, upstream, idle
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()

    def from_client(self, data: bytes) -> None:
        transport = self.upstream.transport
        if transport is not None:
            transport.write(data)
            self.owner.deadline = self.loop.time() + self.idle

    def to_client(self, data: bytes) -> None:
        if not self.client.is_closing():
            self.client.write(data)
            self.owner.deadline = self.loop.time() + self.idle

    def pause_upstream(self, paused: bool) -> None:
        """The client cannot keep up (its transport's buffer is full): stop reading from the upstream."""
        transport = self.upstream.transport
        if transport is None or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def close(self) -> None:
        """Either side closed, or the idle deadline passed: close both (buffered bytes are flushed first)."""
        self.upstream.close()
        if not self.client.is_closing():
            self.client.close()
        if not self.done.done():
            self.done.set_result(None)


async def open_tunnel(
    handler: ProxyHandler, request: FastRequest, routed: Routed, owner: TunnelOwner, *, idle: float
) -> Answer:
    """Ask the chosen upstream (stable once more if the canary refuses), then splice or relay its refusal."""
    label, track, upstream = routed.plan.label, routed.track, routed.upstream
    try:
        try:
            side = await _ask(handler, request, routed, track, upstream)
        except UpstreamError as exc:
            handler.metrics.upstream_error(label, track, exc.reason)
            if not (track == "canary" and exc.reason in ("connect", "reset") and exc.before_response):
                return _refused(handler, routed, track, _STATUS[exc.reason])
            handler.metrics.decision(label, "stable", "fallback")
            track, upstream = "stable", routed.plan.config.stable
            side = await _ask(handler, request, routed, track, upstream)
    except UpstreamError as exc:
        handler.metrics.upstream_error(label, track, exc.reason)
        return _refused(handler, routed, track, _STATUS[exc.reason])
    except asyncio.CancelledError:
        handler.metrics.request_done(label, track, "499", handler.loop.time() - routed.start)
        raise
    if side.status != 101:
        return _relay(handler, routed, track, side)
    return await _splice(handler, request, routed, track, side, owner, idle)


async def _ask(
    handler: ProxyHandler, request: FastRequest, routed: Routed, track: str, upstream: str
) -> UpstreamSide:
    target = routed.plan.targets[(upstream, track)]
    pool, loop = target.pool, handler.loop
    if pool.size >= pool.max_connections:  # open tunnels count against the upstream's maxConnections
        raise UpstreamError("overflow", before_response=True)
    pool.size += 1  # given back by UpstreamSide.connection_lost, or below if the connection never opens
    try:
        async with asyncio.timeout(pool.connect_timeout):
            factory: Any = lambda: UpstreamSide(loop, pool)  # noqa: E731 -- a protocol by duck typing
            _, protocol = await loop.create_connection(
                factory, pool.host, pool.port, ssl=pool.ssl,
                server_hostname=pool.host if pool.ssl else None,
            )  # fmt: skip
    except TimeoutError:
        pool.size -= 1
        raise UpstreamError("timeout", before_response=True) from None
    except OSError:
        pool.size -= 1
        raise UpstreamError("connect", before_response=True) from None
    except BaseException:
        pool.size -= 1
        raise
    side: UpstreamSide = protocol
    out = forward.bodiless(request, fwd=routed.fwd, max_body=0)
    upgrade = websocket_upgrade(request) or WEBSOCKET
    head = build_request_head(
        method=b"GET", target=target.base_path + out.target, authority=pool.authority,
        raw_headers=request.raw_headers, plan=target.plan, fwd=routed.fwd,
        framing=b"Connection: Upgrade\r\nUpgrade: " + upgrade + b"\r\n",
    )  # fmt: skip
    assert side.transport is not None
    side.transport.write(head)
    try:
        async with asyncio.timeout(target.timeout):
            await asyncio.shield(side.answered)
    except TimeoutError:
        side.close()
        raise UpstreamError("timeout", before_response=not side.received_any) from None
    except BaseException:  # cancelled: the client went away
        side.close()
        raise
    if side.error is not None or (side.status == 101 and side.upgrade.lower() != WEBSOCKET):
        side.close()
        raise UpstreamError(side.error or "protocol", before_response=not side.received_any)
    return side


def _refused(handler: ProxyHandler, routed: Routed, track: str, status: int) -> Answer:
    handler.metrics.request_done(routed.plan.label, track, str(status), handler.loop.time() - routed.start)
    resp = plain_error(status)
    resp.force_close()
    return resp


def _relay(handler: ProxyHandler, routed: Routed, track: str, side: UpstreamSide) -> Answer:
    """The upstream declined the upgrade: its answer goes to the client, and the connection closes."""
    side.close()
    body = b"".join(side.body)
    head = response_head(minor=1, status=side.status, head=side.head, length=len(body), keep_alive=False)
    handler.metrics.request_done(
        routed.plan.label, track, str(side.status), handler.loop.time() - routed.start
    )
    return forward.RawResponse(side.status, head + body, keep_alive=False)


async def _splice(
    handler: ProxyHandler, request: FastRequest, routed: Routed, track: str, side: UpstreamSide,
    owner: TunnelOwner, idle: float,
) -> Answer:  # fmt: skip
    client = request.transport
    if client is None or client.is_closing():
        side.close()
        handler.metrics.request_done(routed.plan.label, track, "499", handler.loop.time() - routed.start)
        raise ClientGone("client went away")
    head = response_head(minor=1, status=101, head=side.head, length=None, keep_alive=True)
    client.write(head[:-2] + b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    handler.metrics.request_done(routed.plan.label, track, "101", handler.loop.time() - routed.start)
    tunnel = Tunnel(owner, client, side, idle)
    side.tunnel = tunnel
    for chunk in owner.attach_tunnel(tunnel):
        tunnel.from_client(chunk)
    if side.early:
        tunnel.to_client(side.early)
    if side.transport is None:  # the upstream closed right after its 101
        tunnel.close()
    try:
        await tunnel.done
    finally:
        tunnel.close()
    return Streamed(101, keep_alive=False)


__all__ = ["Tunnel", "TunnelOwner", "UpstreamSide", "open_tunnel", "websocket_upgrade"]
