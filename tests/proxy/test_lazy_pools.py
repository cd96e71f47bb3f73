"""A CanaryRoute's targets and upstream pools are made on its first request, not when it is loaded.

At 10,000 routes most were never sent anything since the proxy started; they hold no pool (issue 18: the
memory of the proxy once ready). What must not change: a pool made lazily is bounded by ``maxConnections``
(the largest among the routes that use it), shared by the routes sending to the same address, reused
across requests (keep-alive) and kept warm when its route is swapped; a request that finishes on a plan
swapped out meanwhile still gets a pool, without counting for the route.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from graylane.proxy.app import STATE
from graylane.proxy.routing.state import ProxyTable, RouteState
from proxytest import LocalProxy, Upstream, dump, route_doc, start_local_proxy, write_atomic
from waiting import eventually_async

ROUTES = 5


def doc(stable: Upstream, canary: Upstream, i: int, **fields: Any) -> dict[str, Any]:
    return route_doc(stable.url, canary.url, name=f"r{i}", hosts=[f"r{i}.test"], **fields)


@pytest.fixture
async def lazy(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> AsyncIterator[LocalProxy]:
    """``ROUTES`` routes ``r<i>.test`` to the same two upstreams; r0 allows one connection, the rest 64."""
    conf = tmp_path / "routes"
    conf.mkdir()
    for i in range(ROUTES):
        write_atomic(conf / f"r{i}.json", dump(doc(stable, canary, i, max_connections=1 if i == 0 else 64)))
    p = await start_local_proxy(conf, server=server_kind)
    yield p
    await p.close()


def state_of(p: LocalProxy) -> RouteState:
    return p.app[STATE]


def served(p: LocalProxy) -> tuple[RouteState, ProxyTable]:
    state = state_of(p)
    assert state.table is not None
    return state, state.table


def made(p: LocalProxy) -> set[str]:
    return {key for key, plan in served(p)[1].plans.items() if plan.targets.made}


async def get(p: LocalProxy, host: str, path: str = "/") -> int:
    async with p.session.get(p.url + path, headers={"Host": host}) as resp:
        await resp.read()
        return resp.status


async def test_no_pool_before_a_routes_first_request(lazy: LocalProxy) -> None:
    state = state_of(lazy)
    assert len(state.pools) == 0 and made(lazy) == set()

    assert await get(lazy, "r3.test") == 200
    assert made(lazy) == {"shop/r3"} and state.pools.holds("shop/r3")
    assert len(state.pools) == 2  # stable's and canary's addresses; the other routes still hold none
    assert not any(state.pools.holds(f"shop/r{i}") for i in (0, 1, 2, 4))


async def test_a_lazily_made_pool_is_bounded_shared_and_reused(lazy: LocalProxy, stable: Upstream) -> None:
    state, table = served(lazy)
    slow = asyncio.create_task(get(lazy, "r0.test", "/sleep?s=1"))  # r0's first request: maxConnections 1
    await eventually_async(lambda: any(s["path"] == "/sleep?s=1" for s in stable.seen), what="in flight")
    assert await get(lazy, "r0.test") == 503  # the bound of the pool made by the first request
    assert await slow == 200
    pool = table.plans["shop/r0"].targets[("v1", "stable")].pool
    assert pool.max_connections == 1 and pool.size == 1

    for _ in range(3):  # one keep-alive connection, reused
        assert await get(lazy, "r0.test") == 200
    assert pool.size == 1 and len(pool.idle) == 1

    assert await get(lazy, "r1.test") == 200  # another route to the same address joins the same pool
    assert table.plans["shop/r1"].targets[("v1", "stable")].pool is pool
    assert pool.max_connections == 64 and pool.size == 1  # the largest bound among its routes; reused
    assert len(state.pools) == 2


async def test_a_swapped_route_keeps_its_warm_pools(
    lazy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    table = served(lazy)[1]
    assert await get(lazy, "r2.test") == 200
    pools = [target.pool for target in table.plans["shop/r2"].targets.values()]

    await lazy.put(doc(stable, canary, 2, weight=100, generation=2), "r2.json")
    plan = table.plans["shop/r2"]
    assert plan.targets.made  # made at once: the route had taken pools
    assert [target.pool for target in plan.targets.values()] == pools
    assert not any(pool.retired for pool in pools)
    assert await get(lazy, "r2.test") == 200 and canary.seen[-1]["svc"] == "canary"


async def test_a_plan_swapped_out_before_its_first_request_borrows_pools(
    lazy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    state, table = served(lazy)
    old = table.plans["shop/r4"]
    elsewhere = stable.url.replace("127.0.0.1", "localhost")  # the same upstream under another pool key
    await lazy.put(route_doc(elsewhere, canary.url, name="r4", hosts=["r4.test"], generation=2), "r4.json")
    assert table.plans["shop/r4"] is not old

    borrowed = old.targets[("v1", "stable")].pool  # what a request still on the old plan would use
    assert borrowed.retired  # nobody else sends there: a pool that closes its connection after use
    assert not state.pools.holds("shop/r4") and len(state.pools) == 0  # nothing counted for the route

    assert await get(lazy, "r4.test") == 200  # the new plan makes and counts its own
    assert state.pools.holds("shop/r4") and len(state.pools) == 2
    assert table.plans["shop/r4"].targets[("v1", "stable")].pool is not borrowed


async def test_explain_still_shows_the_upstream_url(lazy: LocalProxy, stable: Upstream) -> None:
    query = urllib.parse.urlencode({"host": "r1.test", "path": "/"})
    async with lazy.session.get(f"{lazy.admin}/explain?{query}") as resp:
        body = await resp.json()
    assert (body["route"], body["upstream"], body["upstreamURL"]) == ("shop/r1", "v1", stable.url)
    assert made(lazy) == set()  # explaining a request makes nothing
