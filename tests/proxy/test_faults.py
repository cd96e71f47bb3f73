"""Misbehaving upstreams (reliability.md §4.8): hang, reset, refuse, garbage, slow, truncated, overflow."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from proxytest import LocalProxy, Upstream, free_port, route_doc

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def fault_server() -> AsyncIterator[Callable[[Behaviour], Awaitable[str]]]:
    servers: list[asyncio.Server] = []
    held: list[asyncio.StreamWriter] = []

    async def start(behaviour: Behaviour) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            try:
                await reader.readuntil(b"\r\n\r\n")
                await behaviour(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for w in held:
        w.transport.abort()
    for s in servers:
        s.close()


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02 not http at all\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


async def endless_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for i in range(4000):  # ~250 KB of headers and no end of the head: the proxy gives up at 64 KiB
        writer.write(b"X-Pad-%d: %s\r\n" % (i, b"p" * 50))
    await writer.drain()
    await asyncio.sleep(3600)


async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    for i in range(10):
        await asyncio.sleep(0.05)
        writer.write(str(i).encode())
        await writer.drain()


async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 70000)
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()


async def stall_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 70000)
    await writer.drain()
    await asyncio.sleep(3600)


async def metrics(proxy: LocalProxy) -> str:
    async with proxy.session.get(proxy.admin + "/metrics") as resp:
        return await resp.text()


async def test_hung_upstream_gives_504_within_its_timeout(
    proxy: LocalProxy, fault_server: Callable[[Behaviour], Awaitable[str]], canary: Upstream
) -> None:
    await proxy.put(route_doc(await fault_server(hang), canary.url, timeout=1))
    started = time.monotonic()
    async with proxy.session.get(proxy.url + "/") as resp:
        assert resp.status == 504
        assert await resp.text() == "504 Gateway Timeout\n"
    assert time.monotonic() - started < 10
    assert (
        'graylane_upstream_errors_total{route="shop/checkout",track="stable",reason="timeout"} 1'
        in await metrics(proxy)
    )


@pytest.mark.parametrize("fault", ["refused", "reset"])
async def test_canary_failing_before_answering_falls_back_to_stable(
    proxy: LocalProxy, fault_server: Callable[[Behaviour], Awaitable[str]], stable: Upstream, fault: str
) -> None:
    canary_url = f"http://127.0.0.1:{free_port()}" if fault == "refused" else await fault_server(reset)
    await proxy.put(route_doc(stable.url, canary_url, weight=100))
    for _ in range(3):
        async with proxy.session.post(proxy.url + "/", data=b"payload") as resp:
            assert resp.status == 200
            info = await resp.json()
        assert info["svc"] == "stable" and info["len"] == 7
        assert ["X-Graylane-Track", "stable"] in info["headers"]
    text = await metrics(proxy)
    reason = "connect" if fault == "refused" else "reset"
    assert (
        f'graylane_upstream_errors_total{{route="shop/checkout",track="canary",reason="{reason}"}} 3' in text
    )
    assert 'graylane_decisions_total{route="shop/checkout",track="stable",reason="fallback"} 3' in text


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [(reset, 502), (garbage, 502), (endless_head, 502)],
    ids=["reset", "garbage", "endless-head"],
)
async def test_broken_stable_gives_502(
    proxy: LocalProxy, fault_server: Callable[[Behaviour], Awaitable[str]], canary: Upstream,
    behaviour: Behaviour, status: int,
) -> None:  # fmt: skip
    await proxy.put(route_doc(await fault_server(behaviour), canary.url, timeout=30))  # 504 if it hangs
    async with proxy.session.get(proxy.url + "/") as resp:
        assert resp.status == status
        assert await resp.text() == "502 Bad Gateway\n"


async def test_slow_upstream_is_streamed_completely(
    proxy: LocalProxy, fault_server: Callable[[Behaviour], Awaitable[str]], canary: Upstream
) -> None:
    await proxy.put(route_doc(await fault_server(slow), canary.url, timeout=2))
    async with proxy.session.get(proxy.url + "/") as resp:
        assert resp.status == 200
        assert await resp.read() == b"0123456789"


@pytest.mark.parametrize("behaviour", [truncated, stall_body], ids=["closed-mid-body", "stalled-mid-body"])
async def test_broken_body_never_looks_complete(
    proxy: LocalProxy, fault_server: Callable[[Behaviour], Awaitable[str]], canary: Upstream,
    behaviour: Behaviour,
) -> None:  # fmt: skip
    await proxy.put(route_doc(await fault_server(behaviour), canary.url, timeout=1))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with proxy.session.get(proxy.url + "/") as resp:
            assert resp.status == 200
            await resp.read()
    text = await metrics(proxy)  # counted as the 200 the client got, and as a truncated answer
    assert 'graylane_requests_total{route="shop/checkout",track="stable",code="200"} 1' in text, text
    assert 'graylane_upstream_errors_total{route="shop/checkout",track="stable",reason="truncated"} 1' in text


async def test_connection_limit_overflow_is_a_fast_503(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, max_connections=1))
    slow = asyncio.create_task(proxy.session.get(proxy.url + "/sleep?s=1"))
    while not stable.seen or stable.seen[-1]["path"] != "/sleep?s=1":  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    async with proxy.session.get(proxy.url + "/") as resp:
        assert resp.status == 503
    first = await slow
    assert first.status == 200
    first.release()
    text = await metrics(proxy)
    assert 'graylane_upstream_errors_total{route="shop/checkout",track="stable",reason="overflow"} 1' in text
    async with proxy.session.get(proxy.url + "/") as resp:  # the slot came back
        assert resp.status == 200


async def test_client_abort_is_recorded_as_499(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(route_doc(stable.url, canary.url))
    _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /sleep?s=0.5 HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    while not stable.seen:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    writer.transport.abort()
    deadline = time.monotonic() + 5
    while 'code="499"' not in await metrics(proxy):
        assert time.monotonic() < deadline, "no 499 recorded"
        await asyncio.sleep(0.05)


async def answer_early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()


async def test_upstream_answering_before_the_body_is_sent_is_forwarded(
    proxy: LocalProxy, fault_server: Callable[[Behaviour], Awaitable[str]], canary: Upstream
) -> None:
    await proxy.put(route_doc(await fault_server(answer_early), canary.url))
    async with proxy.session.post(proxy.url + "/upload", data=b"x" * 3_000_000) as resp:
        assert resp.status == 413
        assert await resp.read() == b"too big!"
