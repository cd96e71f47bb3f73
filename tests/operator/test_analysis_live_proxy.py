"""The analysis and the rollout core driven by a REAL proxy (file mode) in front of REAL upstreams.

1. Counting (reliability B6): 5xx from the upstream count; 4xx, client aborts and the proxy's own limits do
   not; a canary refusing connections (requests fall back to stable) counts as failing.
2. The figures the rollout loop judges, from the same scrapes.

The loop itself is tested as shipped, not as a copy: tests/operator/test_rollout_operator.py runs the
operator's ``RolloutLoop`` against real proxies (a canary that starts failing under load is rolled back and
then gets no traffic: ``test_canary_with_half_errors_is_rolled_back``; B1, B7), and ``make bench-rollback``
measures how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from graylane.compile.route import compile_route
from graylane.config.model import canonical_json
from graylane.rollout import analysis
from graylane.rollout.analysis import MetricWindow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cluster.ports import free_port
from upstream_app import UpstreamSettings, create_app
from waiting import eventually_async

VENV_BIN = Path(sys.executable).parent
NS, NAME = "shop", "checkout"
ROUTE_KEY = f"{NS}/{NAME}"


class Rig:
    """Two upstream apps, one proxy process reading ``config_dir``, and helpers to talk to them."""

    def __init__(self, tmp: Path) -> None:
        self.config_dir = tmp / "routes"
        self.config_dir.mkdir()
        self.stable = UpstreamSettings(name="v1", seed=1)
        self.canary = UpstreamSettings(name="v2", seed=2)
        self.ports = {"v1": free_port(), "v2": free_port()}
        self.listen = f"127.0.0.1:{free_port()}"
        self.admin = f"http://127.0.0.1:{free_port()}"
        self.log = tmp / "proxy.log"
        self.generation = 0

    def route(self, weight: float, *, canary_port: int | None = None) -> None:
        self.generation += 1
        upstreams = {
            f"checkout-{v}": {
                "metadata": {"name": f"checkout-{v}", "namespace": NS},
                "spec": {"url": f"http://127.0.0.1:{canary_port if v == 'v2' and canary_port else port}"},
            }
            for v, port in self.ports.items()
        }
        obj = {
            "metadata": {"name": NAME, "namespace": NS, "uid": "u-1", "generation": self.generation},
            "spec": {
                "stable": "checkout-v1",
                "canary": "checkout-v2",
                "weight": 0,
                "rules": [
                    {
                        "name": "qa",
                        "match": {"headers": [{"name": "X-Canary", "exact": "true"}]},
                        "to": "canary",
                    }
                ],
            },
        }
        doc = compile_route(obj, upstreams, weight=weight)
        tmp = self.config_dir / f".{NS}.{NAME}.json.tmp"
        tmp.write_text(canonical_json(doc) + "\n")
        tmp.replace(self.config_dir / f"{NS}.{NAME}.json")

    async def scrape(self, session: aiohttp.ClientSession) -> analysis.Snapshot:
        async with session.get(f"{self.admin}/metrics") as resp:
            assert resp.status == 200
            return analysis.parse_snapshot(await resp.text())

    async def weight_served(self, session: aiohttp.ClientSession) -> float | None:
        async with session.get(f"{self.admin}/routes") as resp:
            body = await resp.json()
        weights = [r["weight"] for r in body["routes"] if r["route"] == ROUTE_KEY]
        return weights[0] if weights else None


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield Rig(tmp_path)


@contextlib.asynccontextmanager
async def running(rig: Rig, *, weight: float) -> AsyncIterator[aiohttp.ClientSession]:
    runners = []
    for settings, port in ((rig.stable, rig.ports["v1"]), (rig.canary, rig.ports["v2"])):
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    rig.route(weight)
    with rig.log.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "graylane-proxy"),
            "--config-dir",
            str(rig.config_dir),
            "--listen",
            rig.listen,
            "--admin-listen",
            rig.admin.removeprefix("http://"),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession() as session:
            await served(lambda: rig.weight_served(session), lambda w: w == weight, what="proxy ready")
            yield session
    finally:
        proc.kill()
        await proc.wait()
        for runner in runners:
            await runner.cleanup()


async def served(probe: Any, ok: Any, *, what: str) -> Any:
    """``eventually`` until ``probe()`` answers (a starting proxy refuses) with a value ``ok`` accepts."""

    async def check() -> Any:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            value = await probe()
            return (value,) if ok(value) else None
        return None

    (value,) = await eventually_async(check, what=what)
    return value


async def fire(session: aiohttp.ClientSession, rig: Rig, n: int, **kw: Any) -> list[int]:
    statuses = []
    for _ in range(n):
        async with session.get(f"http://{rig.listen}/", **kw) as resp:
            await resp.read()
            statuses.append(resp.status)
    return statuses


CANARY = {"headers": {"X-Canary": "true"}}


async def test_only_upstream_failures_count(rig: Rig) -> None:
    async with running(rig, weight=0) as session:
        window = MetricWindow(retention_seconds=600)
        window.add(now=0.0, snapshots={"proxy": await rig.scrape(session)})

        rig.canary.update({"errorRate": 0.3, "errorStatus": 500})
        upstream_5xx = (await fire(session, rig, 100, **CANARY)).count(500)
        rig.canary.update({"errorRate": 1.0, "errorStatus": 404})
        assert set(await fire(session, rig, 40, **CANARY)) == {404}
        rig.canary.update({"errorRate": 0.0, "delayMs": 3000})
        for _ in range(5):  # the client gives up: 499, not the canary's fault
            with pytest.raises(asyncio.TimeoutError):
                await fire(session, rig, 1, timeout=aiohttp.ClientTimeout(total=0.2), **CANARY)
        rig.canary.update({"delayMs": 0})
        assert set(await fire(session, rig, 30)) == {200}  # stable

        await served(
            lambda: rig.scrape(session),
            lambda s: s.series.get((ROUTE_KEY, "canary", "code", "499")) == 5,
            what="499s counted",
        )
        window.add(now=1.0, snapshots={"proxy": await rig.scrape(session)})
        figures = window.figures(ROUTE_KEY, now=1.0, window_seconds=600)
        assert figures is not None
        assert upstream_5xx > 0
        assert (figures.canary.requests, figures.canary.errors) == (145, upstream_5xx)
        assert (figures.stable.requests, figures.stable.errors) == (30, 0)
        assert figures.canary.p99_latency_ms is not None and figures.stable.p99_latency_ms is not None


async def test_a_canary_refusing_connections_is_failing(rig: Rig) -> None:
    async with running(rig, weight=0) as session:
        rig.route(0, canary_port=free_port())  # nothing listens there: connect refused

        async def one_then_scrape() -> analysis.Snapshot:
            assert await fire(session, rig, 1, **CANARY) == [200]
            return await rig.scrape(session)

        await served(
            one_then_scrape,
            lambda s: s.series.get((ROUTE_KEY, "canary", "error", "connect"), 0) >= 1,
            what="the new document and a refused connection",
        )
        before = await rig.scrape(session)
        assert set(await fire(session, rig, 60, **CANARY)) == {200}  # every one served by stable
        window = MetricWindow(retention_seconds=600)
        window.add(now=0.0, snapshots={"proxy": before})
        window.add(now=1.0, snapshots={"proxy": await rig.scrape(session)})
        figures = window.figures(ROUTE_KEY, now=1.0, window_seconds=600)
        assert figures is not None
        assert (figures.canary.requests, figures.canary.errors) == (60, 60)
        assert (figures.stable.requests, figures.stable.errors) == (60, 0)
