"""Many routes, changed one at a time: the per-route swap, a bad document rejected alone, bursts coalesced.

Real HTTP through the proxy (both data-plane servers) to real upstreams on loopback; the proxy runs in this
process, so the tests can also check *which objects* a change replaced: a swap must leave every other route's
compiled route, plan and connection pools exactly as they were (the same objects), not rebuilt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from graylane.proxy.app import STATE
from proxytest import (
    LocalProxy,
    Upstream,
    dump,
    gateway_doc,
    http_rule,
    route_doc,
    rule,
    start_local_proxy,
    write_atomic,
)
from waiting import eventually_async

ROUTES = 40


def doc(stable: Upstream, canary: Upstream, i: int, **fields: Any) -> dict[str, Any]:
    return route_doc(stable.url, canary.url, name=f"r{i}", hosts=[f"r{i}.test"], **fields)


async def svc(p: LocalProxy, host: str, path: str = "/") -> tuple[int, str | None]:
    async with p.session.get(p.url + path, headers={"Host": host}) as resp:
        if resp.status != 200:
            return resp.status, None
        return 200, (await resp.json())["svc"]


async def routes_page(p: LocalProxy) -> dict[str, Any]:
    async with p.session.get(p.admin + "/routes") as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def many(
    tmp_path: Path, stable: Upstream, canary: Upstream, server: str, **extra: dict[str, Any]
) -> LocalProxy:
    """A proxy serving ``ROUTES`` routes ``r<i>.test`` (weight 0) and the ``extra`` files; listener 80."""
    conf = tmp_path / "routes"
    conf.mkdir()
    for i in range(ROUTES):
        write_atomic(conf / f"r{i}.json", dump(doc(stable, canary, i)))
    for name, bad in extra.items():
        write_atomic(conf / name, dump(bad))
    p = await start_local_proxy(conf, server=server, listener_port=80)
    assert p.app[STATE].ready  # the first scan ran before the listener opened
    return p


@pytest.fixture
async def routed(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> AsyncIterator[LocalProxy]:
    """The proxy serving ``ROUTES`` routes ``r<i>.test``, weight 0."""
    p = await many(tmp_path, stable, canary, server_kind)
    yield p
    await p.close()


async def test_a_changed_route_is_swapped_in_alone(
    routed: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    p = routed
    state = p.app[STATE]
    table = state.table
    assert table is not None
    before = {key: (table.core.find(key), plan, [t.pool for t in plan.targets.values()])
              for key, plan in table.plans.items()}  # fmt: skip
    serial, reloads = table.serial, state.metrics.reloads
    in_flight = asyncio.create_task(svc(p, "r1.test", "/sleep?s=0.5"))
    await eventually_async(lambda: any(s["path"].startswith("/sleep") for s in stable.seen), what="in flight")

    await p.put(doc(stable, canary, 0, weight=100, generation=2), "r0.json")

    assert await in_flight == (200, "stable")  # another route's request in flight finished as it was
    assert await svc(p, "r0.test") == (200, "canary")
    assert await svc(p, "r1.test") == (200, "stable")
    assert state.table is table and table.serial == serial + 1 and state.metrics.reloads == reloads + 1
    for key, (core, plan, pools) in before.items():
        if key == "shop/r0":
            assert table.core.find(key) is not core and table.plans[key] is not plan
            assert [t.pool for t in table.plans[key].targets.values()] == pools  # pools kept warm
        else:  # untouched: the very same objects, nothing rebuilt
            assert table.core.find(key) is core and table.plans[key] is plan
    page = await routes_page(p)
    assert {r["route"]: r["generation"] for r in page["routes"]}["shop/r0"] == 2


async def test_an_invalid_document_among_many_is_rejected_alone(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    bad = doc(stable, canary, 99, rules=[rule("broken", "canary", headers=[{"name": "X-A", "regex": "(a"}])])
    p = await many(tmp_path, stable, canary, server_kind, **{"r99.json": bad})
    try:
        page = await routes_page(p)
        assert len(page["routes"]) == ROUTES
        [rejected] = page["rejected"]
        assert rejected["source"] == "r99.json" and not rejected["servingPrevious"]
        assert rejected["errors"][0]["path"] == "rules[0].match.headers[0].regex"
        assert await svc(p, "r99.test") == (404, None)
        assert [await svc(p, f"r{i}.test") for i in (0, 17, ROUTES - 1)] == [(200, "stable")] * 3

        table = p.app[STATE].table
        assert table is not None
        kept = dict(table.plans)
        broken = doc(stable, canary, 5, weight=100, generation=2, rules=bad["rules"])
        assert p.conf_dir is not None
        write_atomic(p.conf_dir / "r5.json", dump(broken))
        await eventually_async(lambda: p.app[STATE].sources["r5.json"].rejection is not None, what="rejected")
        assert await svc(p, "r5.test") == (200, "stable")  # the previous version of r5 keeps serving
        assert all(table.plans[key] is plan for key, plan in kept.items())
        page = await routes_page(p)
        assert {r["source"] for r in page["rejected"]} == {"r99.json", "r5.json"}
    finally:
        await p.close()


async def test_a_burst_of_updates_is_coalesced_and_the_last_one_is_served(
    routed: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    p = routed
    state = p.app[STATE]
    updates, metrics = state.updates, state.metrics
    coalesced, reloads = metrics.coalesced, metrics.reloads
    for generation in range(2, 1002):  # 1,000 versions of one route, faster than they are applied
        updates.offer(
            "r3.json",
            dump(doc(stable, canary, 3, generation=generation, weight=generation % 2 * 100)).encode(),
        )
    for i in range(ROUTES):  # and one version of every route on top
        updates.offer(f"r{i}.json", dump(doc(stable, canary, i, generation=2000, weight=100)).encode())
    assert updates.waiting == ROUTES  # at most one document per source waits: bounded, never a queue
    assert metrics.coalesced == coalesced + 1000

    await updates.settle()
    assert metrics.generation["shop/r3"] == 2000
    assert metrics.reloads - reloads <= -(-ROUTES // updates.slice_size)  # a few slices, not 1,040 swaps
    assert [await svc(p, f"r{i}.test") for i in (0, 3, ROUTES - 1)] == [(200, "canary")] * 3
    async with p.session.get(p.admin + "/metrics") as resp:
        assert f"graylane_config_coalesced_total {coalesced + 1000}" in await resp.text()


async def test_files_rewritten_in_a_burst_are_read_once(
    routed: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    p = routed
    state = p.app[STATE]
    reloads = state.metrics.reloads
    assert p.conf_dir is not None
    for generation in range(2, 302):  # no await in between: the proxy sees only where the burst ended
        write_atomic(p.conf_dir / "r7.json", dump(doc(stable, canary, 7, generation=generation, weight=100)))
    await eventually_async(lambda: state.metrics.generation["shop/r7"] == 301, what="the last version")
    assert state.metrics.reloads == reloads + 1
    assert await svc(p, "r7.test") == (200, "canary")


async def test_a_1_mib_document_loads(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    values = [f"user-{i:08d}-xxxxxxxx" for i in range(500)]
    rules = [rule(f"r{i}", "canary", headers=[{"name": "X-User", "in": values}]) for i in range(80)]
    big = route_doc(stable.url, canary.url, name="big", hosts=["big.test"], rules=rules)
    text = dump(big)
    assert 0.9 * 2**20 < len(text.encode()) <= 2**20  # the ConfigMap limit
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "big.json", text)
    p = await start_local_proxy(conf, server=server_kind)
    try:
        assert (await routes_page(p))["rejected"] == []
        async with p.session.get(p.url + "/", headers={"Host": "big.test", "X-User": values[-1]}) as resp:
            assert resp.status == 200 and (await resp.json())["svc"] == "canary"
        assert await svc(p, "big.test") == (200, "stable")
    finally:
        await p.close()


async def test_gateway_and_mirrored_routes_swap_in_alone(
    routed: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    p = routed
    table = p.app[STATE].table
    assert table is not None
    others = {key: plan for key, plan in table.plans.items()}
    gateway = gateway_doc({"v1": stable.url, "v2": canary.url}, http_rule(
        {"path": {"type": "PathPrefix", "value": "/gw"}, "headers": [{"name": "X-Gw", "exact": "1"}]},
        backends=[("v2", 1)]), listeners=[{"port": 80, "hosts": ["r2.test"]}])  # fmt: skip
    await p.put(gateway, "gw.json")
    mirror = {
        "percent": 100,
        "methods": [],
        "maxBodyBytes": 65536,
        "compare": {"body": False, "ignoreHeaders": []},
    }
    await p.put(doc(stable, canary, 4, generation=2, mirror=mirror), "r4.json")

    async with p.session.get(p.url + "/gw/x", headers={"Host": "r2.test", "X-Gw": "1"}) as resp:
        assert resp.status == 200 and (await resp.json())["svc"] == "canary"  # the Gateway rule wins
    assert await svc(p, "r2.test", "/gw/x") == (200, "stable")  # without its header: the CanaryRoute
    assert await svc(p, "r4.test") == (200, "stable")
    await eventually_async(lambda: any(["X-Graylane-Track", "mirror"] in s["headers"] for s in canary.seen),
                           what="the mirrored copy")  # fmt: skip
    assert ("v2", "mirror") in table.plans["shop/r4"].targets
    assert all(table.plans[key] is plan for key, plan in others.items() if key != "shop/r4")
    assert table.core.ports == (80,)

    assert p.conf_dir is not None
    (p.conf_dir / "gw.json").unlink()
    await eventually_async(lambda: "infra/web" not in table.plans, what="the Gateway route gone")
    assert table.core.ports == ()
    assert await svc(p, "r2.test", "/gw/x") == (200, "stable")
