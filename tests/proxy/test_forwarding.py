"""What crosses the proxy: header rewriting, hop-by-hop stripping, a neutral client, streaming, limits."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from typing import Any

import aiohttp
from proxytest import LocalProxy, Upstream, raw_exchange, route_doc, start_local_proxy, status_codes


def headers_of(info: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in info["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


async def test_upstream_sees_forwarding_headers_and_track_headers(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    doc = route_doc(
        stable.url, canary.url,
        rules=[{"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}}],
        requestHeaders={"canary": {"set": {"X-Feature": "on"}}, "stable": {"set": {"X-Feature": "off"}}},
    )  # fmt: skip
    await proxy.put(doc)
    sent = {"X-Canary": "true", "X-Graylane-Track": "stable", "X-Feature": "forged", "X-Real-IP": "6.6.6.6",
            "X-Forwarded-For": "198.51.100.7", "Host": "shop.example.com", "X-Custom": "kept",
            "Forwarded": "for=198.51.100.7;proto=https"}  # fmt: skip
    async with proxy.session.get(proxy.url + "/p?q=1", headers=sent) as resp:
        info = await resp.json()
    h = headers_of(info)
    assert info["svc"] == "canary" and info["path"] == "/p?q=1"
    assert h["x-graylane-track"] == ["canary"]
    assert h["x-feature"] == ["on"]
    assert h["x-custom"] == ["kept"]
    assert h["x-forwarded-for"] == ["198.51.100.7, 127.0.0.1"]
    assert h["x-real-ip"] == ["198.51.100.7"]  # loopback is a trusted proxy in these tests
    assert h["x-forwarded-host"] == ["shop.example.com"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["forwarded"] == ["for=198.51.100.7;proto=https, for=127.0.0.1"]
    assert h["host"] == [canary.url.removeprefix("http://")]


async def test_hop_by_hop_headers_are_stripped_both_ways(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, canary.url))
    sent = {"Connection": "keep-alive, X-Secret", "X-Secret": "1", "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic eA==", "Proxy-Connection": "keep-alive", "Upgrade": "h2c",
            "Trailer": "X-T"}  # fmt: skip
    async with proxy.session.get(proxy.url + "/", headers=sent) as resp:
        h = headers_of(await resp.json())
    for name in (
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "trailer",
    ):
        assert name not in h, name
    assert h.get("connection") in (
        None,
        ["keep-alive"],
    )  # aiohttp's upstream server view; the proxy sends none
    async with proxy.session.get(proxy.url + "/hop") as resp:
        got = {k.lower() for k in resp.headers}
        assert resp.headers["X-Kept"] == "yes"
    for name in ("x-up-secret", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert name not in got, name


async def test_upstream_client_is_neutral(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(route_doc(stable.url, canary.url))
    async with proxy.session.get(proxy.url + "/cookie") as resp:
        assert resp.headers["Set-Cookie"].startswith("session=user-a-secret")
    async with proxy.session.get(proxy.url + "/x") as resp:
        h = headers_of(await resp.json())
    assert "cookie" not in h  # no jar: user A's cookie is not replayed for user B
    async with proxy.session.get(proxy.url + "/redirect", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "http://169.254.169.254/latest/meta-data/"
    async with proxy.session.get(proxy.url + "/gzip", headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert await resp.read() == gzip.compress(b"zipped " * 100, mtime=0)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /bare HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await reader.read()
    writer.close()
    bare = headers_of(stable.seen[-1])
    assert "user-agent" not in bare and "accept-encoding" not in bare and "accept" not in bare


async def test_large_bodies_stream_both_ways(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(route_doc(stable.url, canary.url))
    body = os.urandom(3 * 1024 * 1024)
    async with proxy.session.post(proxy.url + "/upload", data=body) as resp:
        info = await resp.json()
    assert (info["len"], info["sha"]) == (len(body), hashlib.sha256(body).hexdigest())

    async def chunks() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    async with proxy.session.post(proxy.url + "/upload-chunked", data=chunks()) as resp:
        info = await resp.json()
    assert (info["len"], info["sha"]) == (len(body), hashlib.sha256(body).hexdigest())
    for query in ("n=5000000", "n=5000000&chunked=1"):
        async with proxy.session.get(proxy.url + "/big?" + query) as resp:
            assert resp.status == 200
            data = await resp.read()
        assert len(data) == 5_000_000
        assert data[:512] == bytes(range(256)) * 2


async def test_head_and_204_304_carry_no_body(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(route_doc(stable.url, canary.url))
    raw = await raw_exchange(
        proxy.port,
        b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /status?code=204 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /status?code=200 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    assert status_codes(raw) == [200, 204, 200]
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: " in head
    assert rest.startswith(b"HTTP/1.1 204")  # no body bytes after the HEAD answer


async def test_size_limits_answer_431_and_413(
    stable: Upstream, canary: Upstream, tmp_path: Any, server_kind: str
) -> None:
    conf = tmp_path / "r"
    conf.mkdir()
    p = await start_local_proxy(conf, max_body_bytes=100_000, server=server_kind)
    try:
        await p.put(route_doc(stable.url, canary.url))
        async with p.session.get(p.url + "/", headers={"X-Big": "a" * 9000}) as resp:
            assert resp.status == 431
            assert await resp.text() == "431 Request Header Fields Too Large\n"
        many = {f"X-H{i}": "v" for i in range(150)}
        async with p.session.get(p.url + "/", headers=many) as resp:
            assert resp.status == 431
        async with p.session.post(p.url + "/", data=b"x" * 100_001) as resp:
            assert resp.status == 413
        before = len(stable.seen)

        async def chunks() -> Any:
            for _ in range(20):
                yield b"y" * 10_000

        try:
            async with p.session.post(p.url + "/", data=chunks()) as resp:
                assert resp.status == 413
        except aiohttp.ClientConnectionError:
            pass  # the proxy may close while the client is still sending; either way nothing got through
        assert all(s["len"] <= 100_000 for s in stable.seen[before:])
    finally:
        await p.close()


async def test_slow_header_client_is_disconnected(
    stable: Upstream, canary: Upstream, tmp_path: Any, server_kind: str
) -> None:
    conf = tmp_path / "r"
    conf.mkdir()
    p = await start_local_proxy(conf, header_timeout=0.5, server=server_kind)
    try:
        await p.put(route_doc(stable.url, canary.url))
        reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed by the proxy, nothing answered
        writer.close()
        async with p.session.get(p.url + "/") as resp:  # a normal client is unaffected
            assert resp.status == 200
    finally:
        await p.close()


async def test_error_bodies_leak_nothing(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(route_doc(stable.url, "http://127.0.0.1:1"))
    raw = await raw_exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: \x01secret-value\r\n\r\n")
    assert status_codes(raw) == [400]
    assert b"secret-value" not in raw and b"Traceback" not in raw
    await proxy.put(route_doc("http://127.0.0.1:1", canary.url, generation=2))
    async with proxy.session.get(proxy.url + "/") as resp:
        assert resp.status == 502
        text = await resp.text()
    assert text == "502 Bad Gateway\n"


async def test_many_slow_header_clients_do_not_starve_a_healthy_one(
    stable: Upstream, canary: Upstream, tmp_path: Any, server_kind: str
) -> None:
    conf = tmp_path / "r"
    conf.mkdir()
    p = await start_local_proxy(conf, header_timeout=1.0, server=server_kind)
    writers: list[asyncio.StreamWriter] = []
    try:
        await p.put(route_doc(stable.url, canary.url))
        readers = []
        for _ in range(200):
            reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            readers.append(reader)
            writers.append(writer)
        for _ in range(20):
            async with p.session.get(p.url + "/") as resp:
                assert resp.status == 200
        async with asyncio.timeout(20):
            closed = await asyncio.gather(*(r.read() for r in readers))
        assert closed == [b""] * 200  # every slow client was cut off without an answer
    finally:
        for w in writers:
            w.close()
        await p.close()
