"""Shadow traffic (issue 16): requests routed to stable are copied to the canary; the client gets stable's
answer only, whatever the canary does; pairs are compared and counted; the in-flight bound holds.

Real HTTP servers on loopback for both tracks. "Never delays the client" is shown without clocks: the canary
holds its answer until the test releases it, and the client's answer arrives while it is still held.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from graylane.proxy.app import mirror_share
from graylane.proxy.settings import Settings
from proxytest import (
    LocalProxy,
    Upstream,
    get_json,
    raw_exchange,
    route_doc,
    serve_app,
    start_local_proxy,
    status_codes,
)
from waiting import eventually_async

ROUTE = "shop/checkout"
WITHIN = 10.0  # bounds a wait that must end (an answer held back by the canary would never come)


@dataclass
class Knobs:
    """A test upstream's answer, changeable between requests."""

    status: int = 200
    body: bytes = b"same answer\n"
    headers: dict[str, str] = field(default_factory=dict)
    hold: str = ""  # "": answer at once; "head": hold everything; "body": send the head, hold the body
    release: asyncio.Event = field(default_factory=asyncio.Event)
    seen: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    answered: int = 0


@dataclass
class Fixed:
    url: str
    knobs: Knobs
    runner: web.AppRunner


async def start_fixed(knobs: Knobs) -> Fixed:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        sha = hashlib.sha256(body).hexdigest()
        knobs.seen.append({"method": request.method, "path": request.path_qs, "len": len(body), "sha": sha})
        knobs.active += 1
        knobs.most_active = max(knobs.most_active, knobs.active)
        try:
            if knobs.hold == "head":
                await knobs.release.wait()
            resp = web.StreamResponse(status=knobs.status, headers=knobs.headers)
            resp.content_length = len(knobs.body)
            await resp.prepare(request)
            if knobs.hold == "body":
                await resp.write(knobs.body[:1])
                await knobs.release.wait()
                await resp.write(knobs.body[1:])
            else:
                await resp.write(knobs.body)
            await resp.write_eof()
            knobs.answered += 1
            return resp
        finally:
            knobs.active -= 1

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, url = await serve_app(app)
    return Fixed(url, knobs, runner)


@pytest.fixture
async def fixed() -> AsyncIterator[Callable[[Knobs], Awaitable[Fixed]]]:
    started: list[Fixed] = []

    async def start(knobs: Knobs) -> Fixed:
        started.append(await start_fixed(knobs))
        return started[-1]

    yield start
    for up in started:
        up.knobs.release.set()
        await up.runner.cleanup()


async def resetting_server() -> tuple[str, asyncio.Server]:
    """Reads the request head, then resets the connection (RST)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", server


def mirror(percent: float = 100, **more: Any) -> dict[str, Any]:
    return {"percent": percent, "methods": [], "maxBodyBytes": 65536,
            "compare": {"body": False, "ignoreHeaders": []}, **more}  # fmt: skip


async def metric_lines(proxy: LocalProxy) -> str:
    async with proxy.session.get(proxy.admin + "/metrics") as resp:
        return await resp.text()


async def results(proxy: LocalProxy) -> dict[str, int]:
    text = await metric_lines(proxy)
    pattern = r'graylane_mirror_total\{route="shop/checkout",result="([a-z-]+)"\} (\d+)'
    return {m.group(1): int(m.group(2)) for m in re.finditer(pattern, text)}


async def until_results(proxy: LocalProxy, expected: dict[str, int]) -> None:
    async def check() -> bool:
        return await results(proxy) == expected

    await eventually_async(check, what=f"mirror results {expected}", within=WITHIN)
    assert await results(proxy) == expected


async def fetch(proxy: LocalProxy, path: str = "/", **kw: Any) -> tuple[int, bytes, Any]:
    method = kw.pop("method", "GET")
    async with asyncio.timeout(WITHIN), proxy.session.request(method, proxy.url + path, **kw) as resp:
        return resp.status, await resp.read(), resp.headers


# -- the client gets stable's answer; the canary gets a marked copy -----------------------------------


async def test_a_mirrored_request_reaches_the_canary_marked_and_the_client_gets_stable(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror()))
    status, body, headers = await fetch(proxy, "/cart?id=7", headers={"X-User": "u1"})
    assert status == 200 and b'"svc": "stable"' in body and headers["X-Upstream"] == "stable"
    await eventually_async(lambda: canary.seen, what="the canary got the copy", within=WITHIN)
    copy, original = canary.seen[0], stable.seen[0]
    assert copy["method"] == "GET" and copy["path"] == "/cart?id=7"
    assert ["X-Graylane-Track", "mirror"] in copy["headers"] and ["X-User", "u1"] in copy["headers"]
    assert ["X-Graylane-Track", "stable"] in original["headers"]
    await until_results(proxy, {"match": 1})  # both 200; compare.body is off
    text = await metric_lines(proxy)
    assert f'graylane_requests_total{{route="{ROUTE}",track="mirror",code="200"}} 1' in text
    assert f'graylane_request_duration_seconds_count{{route="{ROUTE}",track="mirror"}} 1' in text
    assert f'graylane_requests_total{{route="{ROUTE}",track="stable",code="200"}} 1' in text
    assert 'track="canary"' not in text  # no user was routed to the canary


async def test_canary_routed_requests_and_other_methods_and_upgrades_are_not_mirrored(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    qa = {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Qa", "exact": "1"}]}}
    doc = route_doc(stable.url, canary.url, mirror=mirror(methods=["POST"]), rules=[qa])
    await proxy.put(doc)
    assert (await fetch(proxy, "/", method="GET"))[0] == 200  # not in methods
    assert (await fetch(proxy, "/", method="POST", data=b"x", headers={"X-Qa": "1"}))[0] == 200  # canary's
    assert (await fetch(proxy, "/", method="POST", data=b"y"))[0] == 200  # this one is mirrored
    await until_results(proxy, {"match": 1})
    assert [s["len"] for s in canary.seen] == [1, 1]  # the X-Qa request itself, then the mirrored copy
    assert [h for h in canary.seen[1]["headers"] if h[0] == "X-Graylane-Track"] == [
        ["X-Graylane-Track", "mirror"]
    ]
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror(), rules=[qa], generation=2))
    upgrade = b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    assert status_codes(await raw_exchange(proxy.port, upgrade, must_close=True)) == [200]  # not mirrored
    assert (await fetch(proxy, "/after"))[0] == 200
    await until_results(proxy, {"match": 2})
    assert [s["path"] for s in canary.seen] == ["/", "/", "/after"] and stable.seen[-2]["path"] == "/up"


# -- the canary's answer, delay or failure never reaches the client -----------------------------------


@pytest.mark.parametrize("hold", ["head", "body"], ids=["hung", "slow-body"])
async def test_a_hung_or_slow_canary_never_delays_the_client(
    proxy: LocalProxy, stable: Upstream, fixed: Callable[[Knobs], Awaitable[Fixed]], hold: str
) -> None:
    canary = await fixed(Knobs(hold=hold))
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror()))
    for i in range(3):
        status, body, _ = await fetch(proxy, f"/n{i}")  # would never finish if it waited for the canary
        assert status == 200 and b'"svc": "stable"' in body
    await eventually_async(lambda: canary.knobs.active == 3, what="three held copies", within=WITHIN)
    assert canary.knobs.answered == 0  # every client answer came while the canary still held its own
    assert await results(proxy) == {}
    canary.knobs.release.set()
    await until_results(proxy, {"match": 3})


async def test_a_hung_canary_times_out_in_the_background_as_a_canary_error(
    proxy: LocalProxy, stable: Upstream, fixed: Callable[[Knobs], Awaitable[Fixed]]
) -> None:
    canary = await fixed(Knobs(hold="head"))
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror(), timeout=0.5))
    status, body, _ = await fetch(proxy, "/")
    assert status == 200 and b'"svc": "stable"' in body
    await until_results(proxy, {"canary-error": 1})
    text = await metric_lines(proxy)
    assert f'graylane_upstream_errors_total{{route="{ROUTE}",track="mirror",reason="timeout"}} 1' in text
    assert f'graylane_requests_total{{route="{ROUTE}",track="mirror",code="504"}} 1' in text


async def test_a_resetting_canary_is_a_canary_error_and_the_client_never_knows(
    proxy: LocalProxy, stable: Upstream
) -> None:
    url, server = await resetting_server()
    try:
        await proxy.put(route_doc(stable.url, url, mirror=mirror()))
        for _ in range(2):
            status, body, _ = await fetch(proxy, "/", method="POST", data=b"payload")
            assert status == 200 and b'"svc": "stable"' in body and b'"len": 7' in body
        await until_results(proxy, {"canary-error": 2})
        text = await metric_lines(proxy)
        assert f'graylane_upstream_errors_total{{route="{ROUTE}",track="mirror",reason="reset"}} 2' in text
        assert 'reason="fallback"' not in text  # a mirror is never retried, on stable or anywhere
    finally:
        server.close()


async def test_a_canary_answering_500_is_a_status_mismatch_the_client_never_sees(
    proxy: LocalProxy, stable: Upstream, fixed: Callable[[Knobs], Awaitable[Fixed]]
) -> None:
    canary = await fixed(Knobs(status=500, body=b"canary is broken\n"))
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror()))
    for _ in range(4):
        status, body, headers = await fetch(proxy, "/")
        assert status == 200 and b"broken" not in body and headers["X-Upstream"] == "stable"
    await until_results(proxy, {"status-mismatch": 4})
    assert f'graylane_requests_total{{route="{ROUTE}",track="mirror",code="500"}} 4' in await metric_lines(
        proxy
    )


# -- bodies: the client's keeps streaming, the copy stops at maxBodyBytes ------------------------------


async def chunks(data: bytes, size: int = 16384) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    ("size", "chunked"), [(7, False), (50_000, False), (50_000, True), (200_000, False)],
    ids=["small", "buffered-64k", "chunked", "streamed-length"],
)  # fmt: skip
async def test_request_bodies_are_copied_whole_to_the_canary(
    proxy: LocalProxy, stable: Upstream, canary: Upstream, size: int, chunked: bool
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror(maxBodyBytes=300_000)))
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    data: Any = chunks(payload) if chunked else payload
    status, body, _ = await fetch(proxy, "/upload", method="PUT", data=data)
    assert status == 200 and f'"len": {size}'.encode() in body
    await until_results(proxy, {"match": 1})
    assert canary.seen[0]["len"] == size and canary.seen[0]["sha"] == hashlib.sha256(payload).hexdigest()
    assert canary.seen[0]["method"] == "PUT"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_max_body_bytes_is_not_mirrored_and_reaches_stable_whole(
    proxy: LocalProxy, stable: Upstream, canary: Upstream, chunked: bool
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror(maxBodyBytes=1000)))
    payload = b"z" * 500_000
    status, body, _ = await fetch(
        proxy, "/upload", method="POST", data=chunks(payload) if chunked else payload
    )
    assert status == 200 and b'"len": 500000' in body
    assert stable.seen[0]["sha"] == hashlib.sha256(payload).hexdigest()
    await until_results(proxy, {"too-large": 1})
    assert (await fetch(proxy, "/small", method="POST", data=b"ok"))[0] == 200  # the slot came back
    await until_results(proxy, {"too-large": 1, "match": 1})
    assert [s["path"] for s in canary.seen] == ["/small"]


# -- comparison ---------------------------------------------------------------------------------------


V1, V2 = {"headers": {"X-Version": "1"}}, {"headers": {"X-Version": "2"}}


@pytest.mark.parametrize(
    ("stable_knobs", "canary_knobs", "compare", "expected"),
    [
        ({}, {}, {"body": True}, "match"),
        ({}, {"status": 404}, {"body": False}, "status-mismatch"),
        ({}, {"body": b"other answer\n"}, {"body": False}, "match"),
        ({}, {"body": b"other answer\n"}, {"body": True}, "body-mismatch"),
        (V1, V2, {"body": False}, "match"),
        (V1, V2, {"body": True}, "header-mismatch"),
        (V1, V2, {"body": True, "ignoreHeaders": ["x-version"]}, "match"),
    ],
    ids=["same", "status", "body-not-compared", "body", "headers-not-compared", "header", "header-ignored"],
)
async def test_pairs_are_compared_and_counted_exactly(
    proxy: LocalProxy, fixed: Callable[[Knobs], Awaitable[Fixed]],
    stable_knobs: dict[str, Any], canary_knobs: dict[str, Any], compare: dict[str, Any], expected: str,
) -> None:  # fmt: skip
    stable, canary = await fixed(Knobs(**stable_knobs)), await fixed(Knobs(**canary_knobs))
    compare = {"ignoreHeaders": [], **compare}
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror(compare=compare)))
    for _ in range(5):
        status, body, headers = await fetch(proxy, "/")
        assert (status, body) == (200, b"same answer\n")
        assert headers.get("X-Version") == stable.knobs.headers.get("X-Version")
    await until_results(proxy, {expected: 5})


async def test_a_long_streamed_body_is_compared_on_its_first_max_body_bytes(
    proxy: LocalProxy, fixed: Callable[[Knobs], Awaitable[Fixed]]
) -> None:
    head = b"h" * 4000
    stable = await fixed(Knobs(body=head + b"stable tail" * 50_000))
    canary = await fixed(Knobs(body=head + b"canary tail" * 50_000))
    await proxy.put(
        route_doc(stable.url, canary.url, mirror=mirror(maxBodyBytes=4000, compare={"body": True}))
    )
    status, body, _ = await fetch(proxy, "/")
    assert status == 200 and body.endswith(b"stable tail")
    await until_results(proxy, {"match": 1})
    await proxy.put(route_doc(stable.url, canary.url, generation=2,
                              mirror=mirror(maxBodyBytes=4001, compare={"body": True})))  # fmt: skip
    assert (await fetch(proxy, "/"))[0] == 200
    await until_results(proxy, {"match": 1, "body-mismatch": 1})


async def test_a_canary_faster_than_stable_is_compared_when_stable_answers(
    proxy: LocalProxy, fixed: Callable[[Knobs], Awaitable[Fixed]]
) -> None:
    stable, canary = await fixed(Knobs(hold="head")), await fixed(Knobs(status=201))
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror()))
    for i in range(3):  # the first copy connects (a task), the later ones reuse the connection (callbacks)
        client = asyncio.create_task(fetch(proxy, f"/{i}"))
        await eventually_async(lambda n=i + 1: canary.knobs.answered == n, what="its answer", within=WITHIN)
        assert await results(proxy) == ({"status-mismatch": i} if i else {})  # waiting for stable's answer
        stable.knobs.release.set()
        assert (await client)[0] == 200
        await until_results(proxy, {"status-mismatch": i + 1})
        stable.knobs.release.clear()


async def test_a_failing_stable_leaves_the_pair_unpaired(
    proxy: LocalProxy, fixed: Callable[[Knobs], Awaitable[Fixed]], canary: Upstream
) -> None:
    url, server = await resetting_server()
    try:
        await proxy.put(route_doc(url, canary.url, mirror=mirror()))
        assert (await fetch(proxy, "/"))[0] == 502
        await until_results(proxy, {"unpaired": 1})
    finally:
        server.close()


# -- the in-flight bound --------------------------------------------------------------------------------


async def test_the_in_flight_bound_holds_under_load_and_drops_are_counted(
    tmp_path: Path, server_kind: str, stable: Upstream, fixed: Callable[[Knobs], Awaitable[Fixed]]
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    proxy = await start_local_proxy(conf, server=server_kind, mirror_max_in_flight=4)
    try:
        canary = await fixed(Knobs(hold="head"))
        await proxy.put(route_doc(stable.url, canary.url, mirror=mirror()))
        connector = aiohttp.TCPConnector(limit=50)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> int:
                async with asyncio.timeout(WITHIN), session.get(f"{proxy.url}/load/{i}") as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one(i) for i in range(200)))
        assert statuses == [200] * 200  # every client answered while 4 copies hang on the canary
        await eventually_async(lambda: canary.knobs.active == 4, what="4 copies at the canary", within=WITHIN)
        assert await results(proxy) == {"dropped": 196}
        canary.knobs.release.set()
        await until_results(proxy, {"dropped": 196, "match": 4})
        assert canary.knobs.most_active == 4
        canary.knobs.release.clear()
        assert (await fetch(proxy, "/again"))[0] == 200  # slots are given back
        await eventually_async(lambda: canary.knobs.active == 1, what="the next copy", within=WITHIN)
        canary.knobs.release.set()
        await until_results(proxy, {"dropped": 196, "match": 5})
        assert len(canary.knobs.seen) == 5
    finally:
        await proxy.close()


# -- what operators see ---------------------------------------------------------------------------------


async def test_explain_and_routes_show_the_mirror_share_and_the_mismatch_rate(
    proxy: LocalProxy, stable: Upstream, fixed: Callable[[Knobs], Awaitable[Fixed]]
) -> None:
    canary = await fixed(Knobs(status=503))
    await proxy.put(route_doc(stable.url, canary.url, mirror=mirror(percent=100),
                              sticky={"keys": ["header:X-User"]}))  # fmt: skip
    for _ in range(2):
        assert (await fetch(proxy, "/", headers={"X-User": "u1"}))[0] == 200
    await until_results(proxy, {"status-mismatch": 2})
    routes = await get_json(proxy.session, proxy.admin + "/routes")
    assert routes["routes"][0]["mirror"] == 100
    answer = await get_json(proxy.session, proxy.admin + "/explain?path=/&header=X-User:u1")
    assert answer["track"] == "stable"
    shown = answer["mirror"]
    assert shown["percent"] == 100 and shown["mirrored"] is True and shown["key"] == "header:X-User"
    assert shown["observed"]["mismatchRate"] == 100.0 and shown["observed"]["compared"] == 2


def test_the_workers_share_the_pods_in_flight_bound() -> None:
    for bound, workers in ((100, 1), (100, 3), (5, 8), (0, 2)):
        shares = [
            mirror_share(Settings(mirror_max_in_flight=bound, workers=workers, worker_index=i))
            for i in range(workers)
        ]
        assert sum(shares) == bound and max(shares) - min(shares) <= 1
