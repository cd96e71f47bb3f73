"""WebSocket tunnels (``proxy/websocket/``): routed like requests, then spliced, both ways, until either side
closes. Real aiohttp WebSocket upstreams and clients on loopback; raw sockets for early data and h2c."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from graylane.proxy.app import DATA_PLANE, STATE
from proxytest import (
    LocalProxy,
    Upstream,
    free_port,
    raw_exchange,
    route_doc,
    rule,
    start_local_proxy,
    status_codes,
)
from waiting import eventually_async

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.fixture
async def wsproxy(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    if server_kind != "fast":
        pytest.skip("WebSocket tunnels are the fast server's (aiohttp's: test_only_the_fast_server_tunnels)")
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, tunnel_idle_timeout=1.0, server=server_kind)
    yield p
    await p.close()


def pool_slots_taken(p: LocalProxy) -> int:
    """Upstream connections the route's pools count (tunnels included): 0 once every tunnel has closed."""
    table = p.app[STATE].table
    assert table is not None
    return sum(target.pool.size for target in table.plans["shop/checkout"].targets.values())


def open_connections(p: LocalProxy) -> int:
    servers = p.app[DATA_PLANE]._fast
    assert servers, "the fast server runs"
    return sum(len(fast.connections) for fast in servers)


async def counted(p: LocalProxy, needle: str) -> str:
    async with p.session.get(p.admin + "/metrics") as resp:
        text = await resp.text()
    assert needle in text, text
    return text


def masked_text_frame(text: bytes) -> bytes:
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))


async def test_only_the_fast_server_tunnels(
    proxy: LocalProxy, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    await proxy.put(route_doc(stable.url, canary.url))
    if server_kind == "fast":
        async with proxy.session.ws_connect(proxy.url + "/ws") as ws:
            assert (await ws.receive_json())["svc"] == "stable"
    else:  # aiohttp's server: the request goes on without Upgrade, and the upstream refuses a plain GET
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await proxy.session.ws_connect(proxy.url + "/ws")
        assert refused.value.status == 400


async def test_a_socket_goes_where_its_requests_go_and_echoes_both_ways(
    wsproxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    doc = route_doc(
        stable.url, canary.url, rules=[rule("qa", "canary", headers=[{"name": "X-Canary", "exact": "true"}])]
    )
    await wsproxy.put(doc)
    big = os.urandom(3 << 20)  # bigger than every socket buffer on the way: flow control both ways
    for headers, svc in (({"X-Canary": "true"}, "canary"), ({}, "stable")):
        async with wsproxy.session.ws_connect(wsproxy.url + "/ws", headers=headers, max_msg_size=0) as ws:
            info = await ws.receive_json()
            assert info["svc"] == svc
            seen = {k.lower(): v for k, v in info["headers"]}
            assert seen["upgrade"] == "websocket" and seen["x-graylane-track"] == svc
            assert seen["x-forwarded-for"] == "127.0.0.1"
            await ws.send_str("hello")
            assert await ws.receive_str() == "hello"
            await ws.send_bytes(big)
            assert await ws.receive_bytes() == big
    await counted(wsproxy, 'graylane_requests_total{route="shop/checkout",track="canary",code="101"} 1')
    await counted(wsproxy, 'graylane_requests_total{route="shop/checkout",track="stable",code="101"} 1')
    await eventually_async(
        lambda: len(stable.ws_ended) == len(canary.ws_ended) == 1, what="both upstream sockets end"
    )
    await eventually_async(lambda: open_connections(wsproxy) == 0, what="the proxy holds no connection")
    await eventually_async(lambda: pool_slots_taken(wsproxy) == 0, what="the pools give back every slot")


async def test_the_upstream_closing_closes_the_client(
    wsproxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await wsproxy.put(route_doc(stable.url, canary.url))
    async with wsproxy.session.ws_connect(wsproxy.url + "/ws") as ws:
        await ws.receive_json()
        await ws.send_str("close-me")
        msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 4000, "bye")
    await eventually_async(lambda: open_connections(wsproxy) == 0, what="the proxy holds no connection")


async def test_an_idle_tunnel_is_closed(wsproxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await wsproxy.put(route_doc(stable.url, canary.url))
    async with wsproxy.session.ws_connect(wsproxy.url + "/ws", autoping=False, heartbeat=None) as ws:
        await ws.receive_json()
        msg = await asyncio.wait_for(ws.receive(), timeout=10)  # nothing moves: --tunnel-idle-timeout 1
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    await eventually_async(lambda: len(stable.ws_ended) == 1, what="the upstream side ends too")


async def test_a_refused_upgrade_is_relayed_and_the_connection_closes(
    wsproxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await wsproxy.put(route_doc(stable.url, canary.url))
    raw = await until_closed(
        wsproxy.port, HANDSHAKE.replace(b"/ws", b"/ws?refuse=403") + b"\r\n" + masked_text_frame(b"x")
    )
    assert status_codes(raw) == [403], raw
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and json.loads(body)["svc"] == "stable"
    await counted(wsproxy, 'graylane_requests_total{route="shop/checkout",track="stable",code="403"} 1')


async def test_client_bytes_sent_with_the_head_reach_the_upstream(
    wsproxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await wsproxy.put(route_doc(stable.url, canary.url))
    reader, writer = await asyncio.open_connection("127.0.0.1", wsproxy.port)
    try:
        writer.write(HANDSHAKE + b"\r\n" + masked_text_frame(b"early bird"))  # one packet: head and a frame
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
        assert re.search(rb"(?i)\r\nupgrade: websocket\r\n", head) and b"Connection: Upgrade" in head
        hello = await read_frame(reader)  # the upstream's first message, then the echo of the early frame
        assert json.loads(hello)["svc"] == "stable"
        assert await read_frame(reader) == b"early bird"
    finally:
        writer.close()


async def test_a_refusing_canary_falls_back_to_stable(wsproxy: LocalProxy, stable: Upstream) -> None:
    await wsproxy.put(route_doc(stable.url, f"http://127.0.0.1:{free_port()}", weight=100))
    async with wsproxy.session.ws_connect(wsproxy.url + "/ws") as ws:
        assert (await ws.receive_json())["svc"] == "stable"
    text = await counted(
        wsproxy, 'graylane_decisions_total{route="shop/checkout",track="stable",reason="fallback"} 1'
    )
    assert 'graylane_upstream_errors_total{route="shop/checkout",track="canary",reason="connect"} 1' in text
    await eventually_async(lambda: pool_slots_taken(wsproxy) == 0, what="no slot kept by the refused connect")


async def test_an_upstream_that_never_answers_the_upgrade_gives_504(
    wsproxy: LocalProxy, canary: Upstream
) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        await wsproxy.put(route_doc(f"http://127.0.0.1:{port}", canary.url, timeout=0.5))
        with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
            await wsproxy.session.ws_connect(wsproxy.url + "/ws")
        assert failed.value.status == 504
    finally:
        server.close()


async def test_open_tunnels_count_against_max_connections(
    wsproxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await wsproxy.put(route_doc(stable.url, canary.url, max_connections=1))
    async with wsproxy.session.ws_connect(wsproxy.url + "/ws") as first:
        assert (await first.receive_json())["svc"] == "stable"
        with pytest.raises(aiohttp.WSServerHandshakeError) as over:
            await wsproxy.session.ws_connect(wsproxy.url + "/ws")
        assert over.value.status == 503
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # the slot comes back when the proxy sees the upstream side close
        try:
            async with wsproxy.session.ws_connect(wsproxy.url + "/ws") as again:
                assert (await again.receive_json())["svc"] == "stable"
            break
        except aiohttp.WSServerHandshakeError as refused:
            assert refused.status == 503 and asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    overflow = 'graylane_upstream_errors_total{route="shop/checkout",track="stable",reason="overflow"}'
    await counted(wsproxy, overflow)


async def test_no_websockets_switches_tunnels_off(
    stable: Upstream, canary: Upstream, tmp_path: Path, server_kind: str
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, websockets=False, server=server_kind)
    try:
        await p.put(route_doc(stable.url, canary.url))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await p.session.ws_connect(p.url + "/ws")
        assert refused.value.status == 400  # the upstream saw a plain GET
        assert "upgrade" not in {k.lower() for k, _ in stable.seen[-1]["headers"]}
    finally:
        await p.close()


async def test_h2c_is_not_tunnelled(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    """``Upgrade: h2c`` through a proxy smuggles requests past it: answered as plain HTTP/1.1, then closed."""
    await proxy.put(route_doc(stable.url, canary.url))
    smuggled = b"GET /admin HTTP/1.1\r\nHost: shop.test\r\n\r\n"
    h2c = (b"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")  # fmt: skip
    raw = await raw_exchange(proxy.port, h2c + smuggled, within=2)  # aiohttp's server keeps it open
    assert status_codes(raw) == [200], raw
    seen = {k.lower() for k, _ in stable.seen[-1]["headers"]}
    assert "upgrade" not in seen and "http2-settings" not in seen
    assert [s["path"] for s in stable.seen] == ["/"]  # the bytes after the head were never a request


async def until_closed(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(-1), timeout=10)  # until the proxy closes
    finally:
        writer.close()


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One unmasked, unfragmented server frame's payload."""
    first, second = await reader.readexactly(2)
    assert first & 0x80, "fragmented frames are not expected here"
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return await reader.readexactly(size)
