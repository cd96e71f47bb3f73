"""Proxy discovery from EndpointSlices (pure part) and scraping real HTTP servers on loopback."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from graylane.operator.rollout import scrape
from kopfharness import free_port

METRICS = '# TYPE graylane_config_generation gauge\ngraylane_config_generation{route="shop/checkout"} 3\n'


def slice_(port_name: str, port: int, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ports": [{"name": port_name, "port": port}], "endpoints": endpoints}


@pytest.mark.parametrize(
    ("items", "urls"),
    [
        ([], []),
        ([slice_("admin", 9901, [{"addresses": ["10.0.0.1"]}])], ["http://10.0.0.1:9901/metrics"]),
        ([slice_("admin", 9901, [{"addresses": ["fd00::1"], "conditions": {"ready": True}}])],
         ["http://[fd00::1]:9901/metrics"]),
        ([slice_("admin", 9901, [{"addresses": ["10.0.0.1"], "conditions": {"ready": False}}])], []),
        ([slice_("http", 8080, [{"addresses": ["10.0.0.1"]}])], []),
        ([slice_("admin", 9901, [{"addresses": ["10.0.0.2"]}])] * 2, ["http://10.0.0.2:9901/metrics"]),
    ],
    ids=["none", "ready-by-default", "ipv6", "not-ready", "other-port", "duplicates"],
)  # fmt: skip
def test_endpoint_urls(items: list[dict[str, Any]], urls: list[str]) -> None:
    assert scrape.endpoint_urls({"items": items}) == urls


def test_endpointslices_path_selects_the_service() -> None:
    path = scrape.endpointslices_path("graylane", "graylane-proxy-admin")
    assert path == (
        "/apis/discovery.k8s.io/v1/namespaces/graylane/endpointslices"
        "?labelSelector=kubernetes.io%2Fservice-name%3Dgraylane-proxy-admin"
    )


async def test_a_round_keeps_good_snapshots_and_names_each_failure() -> None:
    async def good(_: web.Request) -> web.Response:
        return web.Response(text=METRICS)

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(text="graylane_requests_total{route= 1\n")

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/good", good)
    app.router.add_get("/garbage", garbage)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port, dead = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    urls = [f"{base}/good", f"{base}/garbage", f"{base}/broken", f"http://127.0.0.1:{dead}/metrics"]
    try:
        async with aiohttp.ClientSession() as session:
            found = await scrape.scrape(session, urls, seconds=2.0)
    finally:
        await runner.cleanup()
    assert list(found.snapshots) == [f"{base}/good"]
    assert found.snapshots[f"{base}/good"].generations == {"shop/checkout": 3}
    assert set(found.failures) == set(urls[1:]) and not found.ok
    assert found.failures[f"{base}/broken"] == "HTTP 503"
    assert "unparsable" in found.failures[f"{base}/garbage"]
