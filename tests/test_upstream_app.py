"""The programmable test upstream (tests/upstream_app.py), over real HTTP on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from upstream_app import UpstreamSettings, create_app


async def client_for(settings: UpstreamSettings) -> TestClient[object, object]:
    client: TestClient[object, object] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    return client


async def test_answers_with_its_version_and_echoes_headers() -> None:
    client = await client_for(UpstreamSettings(name="v2"))
    try:
        resp = await client.get("/any/path")
        assert (resp.status, await resp.text(), resp.headers["X-Upstream-Version"]) == (200, "v2\n", "v2")
        echo = await (await client.post("/echo?a=1", headers={"X-Canary": "true"}, data=b"x")).json()
        assert echo["version"] == "v2" and echo["method"] == "POST" and echo["query"] == "a=1"
        assert echo["headers"]["X-Canary"] == "true"
    finally:
        await client.close()


async def test_error_rate_is_programmable_over_http() -> None:
    client = await client_for(UpstreamSettings(name="v2", seed=7))
    try:
        knobs = await (await client.post("/__control", json={"errorRate": 0.5, "errorStatus": 503})).json()
        assert (knobs["errorRate"], knobs["errorStatus"]) == (0.5, 503)
        statuses = [(await client.get("/")).status for _ in range(200)]
        assert set(statuses) == {200, 503}
        assert 60 <= statuses.count(503) <= 140
        served = (await (await client.get("/__control")).json())["served"]
        assert served == {"200": statuses.count(200), "503": statuses.count(503)}
        await client.post("/__control", json={"errorRate": 0})
        assert {(await client.get("/")).status for _ in range(20)} == {200}
    finally:
        await client.close()


async def test_bad_control_bodies_change_nothing() -> None:
    client = await client_for(UpstreamSettings(name="v1"))
    try:
        for body in ({"errorRate": 2}, {"delayMs": -1}, {"errorStatus": 200}, {"bogus": 1}, [1]):
            resp = await client.post("/__control", json=body)
            assert resp.status == 400, body
        resp = await client.post(
            "/__control", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400
        knobs = await (await client.get("/__control")).json()
        assert (knobs["errorRate"], knobs["delayMs"], knobs["errorStatus"]) == (0.0, 0.0, 500)
    finally:
        await client.close()


async def test_delay_applies_to_answers() -> None:
    settings = UpstreamSettings(name="v1")
    client = await client_for(settings)
    try:
        await client.post("/__control", json={"delayMs": 50})
        assert settings.delay_ms == 50
        assert (await client.get("/")).status == 200
    finally:
        await client.close()
