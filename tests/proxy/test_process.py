"""The real ``graylane-proxy`` process in file mode: bad documents, hot reload under load, drain, workers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from proxytest import (
    PROXY_BIN,
    ProxyProcess,
    Upstream,
    dump,
    get_json,
    route_doc,
    spawn_proxy,
    write_atomic,
)

from graylane.rollout import promtext


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


async def wait_generation(session: aiohttp.ClientSession, proc: ProxyProcess, generation: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        routes = (await get_json(session, proc.admin + "/routes"))["routes"]
        if routes and routes[0]["generation"] == generation:
            return
        assert time.monotonic() < deadline, f"generation {generation} not applied: {routes}"
        await asyncio.sleep(0.02)


async def svc(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        assert resp.status == 200
        return str((await resp.json())["svc"])


async def test_bad_document_is_rejected_whole_and_the_previous_keeps_serving(
    tmp_path: Path, stable: Upstream, canary: Upstream, session: aiohttp.ClientSession, server_kind: str
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "checkout.json", dump(route_doc(stable.url, canary.url, weight=100)))
    proc = spawn_proxy(conf, tmp_path / "proxy.log", server=server_kind)
    try:
        async with session.get(proc.admin + "/readyz") as resp:
            assert resp.status == 200
        assert await svc(session, proc.url + "/") == "canary"
        bad = route_doc(stable.url, canary.url, weight=0, generation=2)
        bad["rules"] = [
            {"name": "r", "to": "canary", "match": {"headers": [{"name": "X", "regex": "(a)\\1"}]}}
        ]
        bad = route_doc(
            stable.url, canary.url, weight=0, generation=2, rules=bad["rules"]
        )  # resealed, still bad
        write_atomic(conf / "checkout.json", dump(bad))
        deadline = time.monotonic() + 5
        while not (body := await get_json(session, proc.admin + "/routes"))["rejected"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        (rej,) = body["rejected"]
        assert rej["source"] == "checkout.json" and rej["servingPrevious"] is True
        assert any(e["path"].startswith("rules[0].match.headers[0].regex") for e in rej["errors"]), rej
        assert body["routes"][0]["generation"] == 1
        assert {await svc(session, proc.url + "/") for _ in range(5)} == {
            "canary"
        }  # the old one still serves
        write_atomic(conf / "checkout.json", "{ not json")
        async with session.get(proc.admin + "/metrics") as resp:
            text = await resp.text()
        assert 'graylane_config_rejected_total{reason="invalid"} 1' in text
        write_atomic(conf / "checkout.json", dump(route_doc(stable.url, canary.url, weight=0, generation=3)))
        await wait_generation(session, proc, 3)
        assert await svc(session, proc.url + "/") == "stable"
        # an older generation of the same route (a replayed or copied document) never replaces a newer one
        write_atomic(
            conf / "checkout.json", dump(route_doc(stable.url, canary.url, weight=100, generation=2))
        )
        deadline = time.monotonic() + 5
        while not any(
            r["reason"] == "stale-generation"
            for r in (await get_json(session, proc.admin + "/routes"))["rejected"]
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await svc(session, proc.url + "/") == "stable"
        (conf / "checkout.json").unlink()
        deadline = time.monotonic() + 5
        while (await session.get(proc.url + "/")).status != 404:
            assert time.monotonic() < deadline, "route not removed with its file"
            await asyncio.sleep(0.05)
    finally:
        assert proc.terminate() == 0, proc.output()


async def test_hot_reload_under_load_20_swaps_zero_failures_zero_misroutes(
    tmp_path: Path, stable: Upstream, canary: Upstream, session: aiohttp.ClientSession, server_kind: str
) -> None:
    """Goal A1: generation g routes everything to canary when g is odd, to stable when even, and stamps
    X-Gen: g on both tracks; a response whose track disagrees with its X-Gen came from a half-applied
    table."""
    conf = tmp_path / "routes"
    conf.mkdir()

    def doc(gen: int) -> str:
        stamp = {"set": {"X-Gen": str(gen)}}
        # every other pair of generations names the upstreams by another address: new pools, old ones retired
        # while requests are in flight on them
        urls = [u.url.replace("127.0.0.1", "localhost") if gen % 4 >= 2 else u.url for u in (stable, canary)]
        return dump(route_doc(*urls, generation=gen, weight=100 if gen % 2 else 0,
                              requestHeaders={"stable": stamp, "canary": stamp}))  # fmt: skip

    write_atomic(conf / "route.json", doc(1))
    proc = spawn_proxy(conf, tmp_path / "proxy.log", server=server_kind)
    applied = 1
    results: list[tuple[int, str, int]] = []  # (generation applied at start, svc, generation seen)
    failures: list[str] = []
    done = asyncio.Event()

    async def client(path: str) -> None:
        while not done.is_set():
            floor = applied
            try:
                async with session.get(proc.url + path) as resp:
                    if resp.status != 200:
                        failures.append(f"status {resp.status}")
                        continue
                    info: dict[str, Any] = await resp.json()
            except aiohttp.ClientError as exc:
                failures.append(repr(exc))
                continue
            gen = int(dict((k.lower(), v) for k, v in info["headers"])["x-gen"])
            results.append((floor, info["svc"], gen))

    try:
        clients = [asyncio.create_task(client("/")) for _ in range(6)]
        clients += [asyncio.create_task(client("/sleep?s=0.3")) for _ in range(2)]
        for gen in range(2, 22):
            await asyncio.sleep(0.1)
            write_atomic(conf / "route.json", doc(gen))
            await wait_generation(session, proc, gen)
            applied = gen
        await asyncio.sleep(0.2)
        done.set()
        await asyncio.gather(*clients)
        assert failures == []
        assert len(results) > 100
        misrouted = [r for r in results if r[1] != ("canary" if r[2] % 2 else "stable")]
        assert misrouted == []
        stale = [r for r in results if r[2] < r[0]]  # a table older than one fully applied before the start
        assert stale == []
        assert {r[2] for r in results} >= set(range(2, 22, 3))
        async with session.get(proc.admin + "/metrics") as resp:
            text = await resp.text()
        assert "graylane_config_reloads_total 21" in text
        assert 'graylane_config_generation{route="shop/checkout"} 21' in text
    finally:
        done.set()
        assert proc.terminate() == 0, proc.output()


async def test_sigterm_drains_in_flight_requests_and_fails_readiness_at_once(
    tmp_path: Path, stable: Upstream, canary: Upstream, session: aiohttp.ClientSession, server_kind: str
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "route.json", dump(route_doc(stable.url, canary.url)))
    proc = spawn_proxy(
        conf,
        tmp_path / "proxy.log",
        extra=["--drain-delay", "1", "--drain-timeout", "10"],
        server=server_kind,
    )
    slow = asyncio.create_task(session.get(proc.url + "/sleep?s=2"))
    while not any(s["path"] == "/sleep?s=2" for s in stable.seen):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    proc.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while True:
        async with session.get(proc.admin + "/readyz") as resp:
            if resp.status == 503:
                assert "draining" in await resp.text()
                break
        assert time.monotonic() < deadline, "readiness did not fail on SIGTERM"
        await asyncio.sleep(0.02)
    resp = await slow
    assert resp.status == 200
    assert (await resp.json())["svc"] == "stable"
    assert await asyncio.to_thread(proc.proc.wait, 20) == 0


async def test_answers_close_keep_alive_connections_while_draining(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    """During the drain delay the listener still accepts, but every answer says ``Connection: close``: a
    keep-alive client moves to a fresh connection instead of meeting the listener's close mid-request."""
    if server_kind != "fast":
        pytest.skip("the aiohttp reference server keeps connections until its listener closes")
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "route.json", dump(route_doc(stable.url, canary.url)))
    proc = spawn_proxy(conf, tmp_path / "proxy.log", extra=["--drain-delay", "30"], server=server_kind)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
    try:
        writer.write(request)
        before = await reader.readuntil(b"\r\n\r\n")
        assert b"connection: close" not in before.lower()
        await reader.readexactly(int(before.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        proc.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        async with aiohttp.ClientSession() as session:
            while True:  # readiness fails at once: the drain has begun
                async with session.get(proc.admin + "/readyz") as resp:
                    if resp.status == 503:
                        break
                assert time.monotonic() < deadline, "readiness did not fail on SIGTERM"
        writer.write(request)
        after = await reader.readuntil(b"\r\n\r\n")
        assert after.startswith(b"HTTP/1.1 200") and b"connection: close" in after.lower()
    finally:
        writer.close()
        proc.proc.kill()
        proc.proc.wait()


async def test_workers_share_the_port(
    tmp_path: Path, stable: Upstream, canary: Upstream, session: aiohttp.ClientSession, server_kind: str
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "route.json", dump(route_doc(stable.url, canary.url)))
    run = tmp_path / "run"  # the supervisor makes its private socket directory here
    run.mkdir()
    proc = spawn_proxy(
        conf, tmp_path / "proxy.log", extra=["--workers", "2"], env={"TMPDIR": str(run)}, server=server_kind
    )
    try:
        deadline = time.monotonic() + 30
        while proc.output().count("data plane listening") < 2:
            assert time.monotonic() < deadline, proc.output()
            await asyncio.sleep(0.1)
        for _ in range(20):
            async with aiohttp.ClientSession() as fresh:  # new connections spread over the workers
                assert await svc(fresh, proc.url + "/") == "stable"
        # every scrape, whichever worker the kernel hands it to, counts the pod's 20 requests
        deadline = time.monotonic() + 10
        while (seen := await pod_requests(proc)) != 20:
            assert seen < 20 and time.monotonic() < deadline, seen
            await asyncio.sleep(0.02)
        assert [await pod_requests(proc) for _ in range(10)] == [20] * 10
        async with aiohttp.ClientSession() as fresh, fresh.get(proc.admin + "/readyz") as resp:
            assert resp.status == 200
        sockets = await asyncio.to_thread(lambda: sorted(p.name for p in run.glob("graylane-workers-*/*")))
        assert sockets == ["worker-0.sock", "worker-1.sock"]
    finally:
        assert proc.terminate() == 0, proc.output()
    assert proc.output().count("data plane listening") == 2
    assert not any(run.iterdir())  # the supervisor removed the socket directory


async def pod_requests(proc: ProxyProcess) -> float:
    async with aiohttp.ClientSession() as fresh, fresh.get(proc.admin + "/metrics") as resp:
        assert resp.status == 200, await resp.text()
        samples = promtext.parse(await resp.text())
    return sum(s.value for s in samples if s.name == "graylane_requests_total")


async def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(PROXY_BIN), "--config-dir", str(tmp_path / "missing"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"not a directory" in err


async def test_a_crashed_worker_stops_the_pod(
    tmp_path: Path, stable: Upstream, canary: Upstream, session: aiohttp.ClientSession, server_kind: str
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "route.json", dump(route_doc(stable.url, canary.url)))
    proc = spawn_proxy(conf, tmp_path / "proxy.log", extra=["--workers", "2"], server=server_kind)
    deadline = time.monotonic() + 30
    while proc.output().count("data plane listening") < 2:
        assert time.monotonic() < deadline, proc.output()
        await asyncio.sleep(0.1)
    children = _children(proc.proc.pid)
    assert len(children) == 2
    os.kill(children[0], signal.SIGKILL)
    assert await asyncio.to_thread(proc.proc.wait, 30) == 1  # the other worker was stopped too
    assert _gone(children[1])


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" in status.read_text()


async def test_the_bare_command_runs_the_fast_server(
    tmp_path: Path, stable: Upstream, canary: Upstream, session: aiohttp.ClientSession
) -> None:
    """No ``--server``: the fast server, named on ``/routes`` and ``/metrics``, tunnels a WebSocket."""
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "checkout.json", dump(route_doc(stable.url, canary.url, weight=100)))
    proc = spawn_proxy(conf, tmp_path / "proxy.log", bare=True)
    try:
        assert (await get_json(session, proc.admin + "/routes"))["server"] == "fast"
        async with session.get(proc.admin + "/metrics") as resp:
            assert 'graylane_proxy_info{server="fast",version="' in await resp.text()
        async with session.ws_connect(proc.url + "/ws") as ws:
            assert (await ws.receive_json(timeout=10))["svc"] == "canary"
            await ws.send_str("hello")
            assert (await ws.receive(timeout=10)).data == "hello"
    finally:
        assert proc.terminate() == 0, proc.output()
