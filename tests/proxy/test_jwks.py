"""JWKS by URL (goal E2): fetched in the background, new kid picked up, random-kid floods rate-limited,
fetch failures keep the stale keys, and requests never wait for a fetch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from graylane.proxy.app import DATA_PLANE
from proxytest import LocalProxy, Upstream, route_doc, start_local_proxy
from waiting import eventually_async


class Idp:
    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        self.broken = False
        self.hold: asyncio.Event | None = None

    def add_key(self, kid: str) -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def token(self, kid: str, **claims: Any) -> str:
        body = {"iss": "https://idp.test", "aud": "shop", "exp": int(time.time()) + 600, **claims}
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.broken:
            return web.Response(status=500)
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": keys})


@pytest.fixture
async def idp() -> AsyncIterator[tuple[Idp, str]]:
    state = Idp()
    app = web.Application()
    app.router.add_get("/jwks.json", state.jwks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state, f"http://127.0.0.1:{port}/jwks.json"
    await runner.cleanup()


async def svc(p: LocalProxy, token: str) -> str:
    async with p.session.get(p.url + "/", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        return str((await resp.json())["svc"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def _routes_to(p: LocalProxy, token: str, track: str) -> bool:
    return await svc(p, token) == track


async def test_jwks_rotation_flood_and_outage(
    idp: tuple[Idp, str], stable: Upstream, canary: Upstream, tmp_path: Path, server_kind: str
) -> None:
    server, url = idp
    server.add_key("k1")
    conf = tmp_path / "r"
    conf.mkdir()
    p = await start_local_proxy(conf, jwks_min_interval=0.5, server=server_kind)
    clock = FakeClock()
    fetcher = p.app[DATA_PLANE].jwks
    fetcher.clock = clock  # the refresh interval is measured on this clock: the test moves it
    try:
        settings = {"issuer": "https://idp.test", "audiences": ["shop"], "algorithms": ["RS256"],
                    "leewaySeconds": 30, "publicKeys": [], "jwksURL": url, "secretRef": None}  # fmt: skip
        rules = [
            {"name": "beta", "to": "canary", "match": {"jwtClaims": [{"claim": "role", "exact": "beta"}]}}
        ]
        await p.put(route_doc(stable.url, canary.url, jwt=settings, rules=rules))
        k1 = server.token("k1", role="beta")
        await eventually_async(lambda: _routes_to(p, k1, "canary"), what="first fetch at table load")

        # rotation: a token with a new kid triggers one refresh, once the interval has passed
        server.add_key("k2")
        clock.advance(0.5)
        before = server.fetches
        k2 = server.token("k2", role="beta")
        await eventually_async(lambda: _routes_to(p, k2, "canary"), what="the rotated key fetched")
        assert server.fetches - before == 1

        before = server.fetches  # a flood of unknown kids: at most one fetch per min interval
        claims = {"role": "beta", "exp": int(time.time()) + 60}
        key = server.keys["k1"]
        forged = [
            jwt.encode(claims, key, algorithm="RS256", headers={"kid": f"rand-{i}"}) for i in range(200)
        ]
        for tok in forged[:100]:
            assert await svc(p, tok) == "stable"
        assert server.fetches == before  # within the interval of the rotation's fetch: none
        clock.advance(0.5)
        for tok in forged[100:]:
            assert await svc(p, tok) == "stable"
        await eventually_async(lambda: not fetcher.fetching(url), what="the flood's one refresh done")
        assert server.fetches - before == 1

        server.broken = True  # an IdP outage keeps the stale keys
        clock.advance(0.5)
        assert await svc(p, server.token("k1", role="beta", n=1)) == "canary"
        before = server.fetches
        assert await svc(p, forged[0]) == "stable"  # triggers a (failing) refresh
        done = lambda: server.fetches > before and not fetcher.fetching(url)  # noqa: E731
        await eventually_async(done, what="the failing refresh done")
        assert await svc(p, server.token("k2", role="beta", n=2)) == "canary"

        server.broken, server.hold = False, asyncio.Event()  # an IdP that never answers blocks no request
        clock.advance(0.5)
        hung = server.fetches
        assert await svc(p, forged[1]) == "stable"
        await eventually_async(lambda: server.fetches > hung, what="the refresh stuck inside the IdP")
        async with asyncio.timeout(10):
            assert await svc(p, server.token("k1", role="beta", n=3)) == "canary"
            assert await svc(p, forged[2]) == "stable"
        server.hold.set()
        text = await (await p.session.get(p.admin + "/metrics")).text()
        assert 'graylane_jwt_rejected_total{reason="unknown-kid"}' in text
    finally:
        await p.close()
