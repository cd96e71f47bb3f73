"""``--workers N``: the worker that answers ``/metrics`` and ``/readyz`` speaks for the whole pod.

Two in-process proxies play worker 0 and worker 1 of one pod (the same private socket directory, each with
its own listener here); the real multi-process ``--workers 2`` is in ``test_process.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from graylane.proxy.app import DATA_PLANE
from proxytest import LocalProxy, Upstream, route_doc, start_local_proxy

from graylane.rollout import promtext


async def requests_total(p: LocalProxy) -> float:
    async with p.session.get(p.admin + "/metrics") as resp:
        assert resp.status == 200, await resp.text()
        samples = promtext.parse(await resp.text())
    return sum(s.value for s in samples if s.name == "graylane_requests_total")


async def counted(p: LocalProxy, expected: float) -> None:
    """Wait until ``/metrics`` counts ``expected`` requests (a response can reach the client just before the
    proxy records it), and fail if it ever counts more."""
    deadline = asyncio.get_running_loop().time() + 10
    while (got := await requests_total(p)) != expected:
        assert got < expected and asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.02)


async def status_of(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as resp:
        return resp.status, await resp.text()


async def test_a_worker_answers_for_its_siblings(
    stable: Upstream, canary: Upstream, tmp_path: Path, server_kind: str
) -> None:
    sockets = tmp_path / "workers"
    sockets.mkdir(mode=0o700)
    workers: list[LocalProxy] = []
    try:
        for index in (0, 1):
            conf = tmp_path / f"routes-{index}"
            conf.mkdir()
            workers.append(
                await start_local_proxy(
                    conf, worker_dir=sockets, worker_index=index, workers=2, server=server_kind
                )
            )
        w0, w1 = workers
        for w in workers:
            await w.put(route_doc(stable.url, canary.url))
        assert await status_of(w0.session, w0.admin + "/readyz") == (200, "ready\n")
        for _ in range(3):
            async with w0.session.get(w0.url + "/") as resp:
                assert resp.status == 200
        for _ in range(5):
            async with w1.session.get(w1.url + "/") as resp:
                assert resp.status == 200
        await counted(w0, 8)  # the pod's count, from either worker
        assert await requests_total(w1) == 8
        await w1.app[DATA_PLANE].stop()  # worker 1 drains (what SIGTERM does); its admin side still answers
        status, text = await status_of(w0.session, w0.admin + "/readyz")
        assert (status, text) == (503, "not ready: worker 1: draining\n")
        await w1.close()
        workers.remove(w1)
        status, text = await status_of(w0.session, w0.admin + "/metrics")
        assert status == 503 and text.startswith("metrics unavailable: worker 1 did not answer"), text
        status, text = await status_of(w0.session, w0.admin + "/readyz")
        assert status == 503 and text.startswith("not ready: worker 1 did not answer"), text
    finally:
        for p in workers:
            await p.close()
