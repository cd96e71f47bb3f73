"""Answering a WebSocket upgrade (``--server fast``; the splice itself is ``tunnel.py``).

The request is decided like any other (rules, JWT claims, the sticky split: a user's sockets go where their
requests go). The proxy opens a fresh connection to the chosen upstream (never a pooled one, but it holds
one of the upstream's ``maxConnections`` while open: over it, 503), sends the head with ``Connection:
Upgrade`` and the client's ``Upgrade``, and waits for the answer within the upstream's ``timeoutSeconds``:

* ``101`` with ``Upgrade: websocket``: the client gets the 101 (end-to-end headers such as
  ``Sec-WebSocket-Accept`` kept) and the tunnel is spliced. Counted once, as code ``101``.
* any other answer (a refusal, ``426``, a redirect): relayed to the client (body up to 1 MiB), and the
  connection closes, since what the client sent after its head was meant for the new protocol.
* refused / reset before answering: the canary falls back to stable once, as plain requests do; otherwise
  502, or 504 on timeout.

Other upgrades (``h2c``: request smuggling through proxies) never get here: the server answers them
as plain requests without ``Upgrade`` and closes the connection after.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from graylane.proxy.answers import ErrorAnswer
from graylane.proxy.request import ClientGone, FastRequest, Streamed
from graylane.proxy.upstream import forward
from graylane.proxy.upstream.client import ERROR_STATUS, UpstreamError, canary_falls_back
from graylane.proxy.upstream.headers import build_request_head, response_head
from graylane.proxy.websocket.tunnel import WEBSOCKET, TunnelOwner, UpstreamSide

if TYPE_CHECKING:
    from graylane.proxy.routing.handler import Answer, ProxyHandler, Routed


async def open_tunnel(
    handler: ProxyHandler, request: FastRequest, routed: Routed, owner: TunnelOwner
) -> Answer:
    """Ask the chosen upstream (stable once more if the canary refuses), then splice or relay its refusal."""
    label, track, upstream = routed.plan.label, routed.track, routed.upstream
    try:
        try:
            side = await _ask(handler, request, routed, track, upstream)
        except UpstreamError as exc:
            handler.metrics.upstream_error(label, track, exc.reason)
            if not canary_falls_back(exc, track):
                return _refused(handler, routed, track, ERROR_STATUS[exc.reason])
            handler.metrics.decision(label, "stable", "fallback")
            track, upstream = "stable", routed.plan.config.stable
            side = await _ask(handler, request, routed, track, upstream)
    except UpstreamError as exc:
        handler.metrics.upstream_error(label, track, exc.reason)
        return _refused(handler, routed, track, ERROR_STATUS[exc.reason])
    except asyncio.CancelledError:
        handler.metrics.request_done(label, track, "499", handler.loop.time() - routed.start)
        raise
    if side.status != 101:
        return _relay(handler, routed, track, side)
    return await _splice(handler, request, routed, track, side, owner)


async def _ask(
    handler: ProxyHandler, request: FastRequest, routed: Routed, track: str, upstream: str
) -> UpstreamSide:
    target = routed.plan.targets[(upstream, track)]
    pool = target.pool
    side = await pool.open(UpstreamSide(handler.loop, pool))  # open tunnels count against maxConnections
    out = forward.bodiless(request, fwd=routed.fwd, max_body=0, where=routed.where)
    head = build_request_head(
        method=b"GET", target=target.base_path + out.target, authority=pool.authority,
        raw_headers=request.raw_headers, plan=target.plan, fwd=routed.fwd,
        framing=b"Connection: Upgrade\r\nUpgrade: websocket\r\n", client_host=out.host,
    )  # fmt: skip
    if side.transport is None:  # closed by the upstream before the head could be sent
        raise UpstreamError("reset", before_response=True)
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
    return ErrorAnswer(status, close=True)


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
    owner: TunnelOwner,
) -> Answer:  # fmt: skip
    client, tunnel = request.transport, owner.tunnel
    if client is None or client.is_closing() or tunnel is None:
        side.close()
        handler.metrics.request_done(routed.plan.label, track, "499", handler.loop.time() - routed.start)
        raise ClientGone("client went away")
    head = response_head(minor=1, status=101, head=side.head, length=None, keep_alive=True)
    client.write(head[:-2] + b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    handler.metrics.request_done(routed.plan.label, track, "101", handler.loop.time() - routed.start)
    tunnel.splice(side)
    try:
        await tunnel.done
    finally:
        tunnel.close()
    return Streamed(101, keep_alive=False)


__all__ = ["open_tunnel"]
