# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""A TrafficPolicy's blocks in a Gateway API document, through the real proxy (both servers) in front of real
upstreams on loopback: the sticky monotone split over three backends, pins on a client CIDR and on
verified JWT claims (a forged token is not trusted: its pin does not apply), pins over zero weights."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from proxytest import LocalProxy, Upstream, gateway_doc, http_rule, start_local_proxy

KEY = ec.generate_private_key(ec.SECP256R1())
FORGER = ec.generate_private_key(ec.SECP256R1())
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
JWT = {"issuer": "https://auth.test", "audiences": ["shop"], "algorithms": ["ES256"], "publicKeys": [PEM]}
STICKY = {"keys": ["jwt:sub", "header:X-User"]}
PINS = [{"name": "office", "match": {"sourceCIDRs": ["203.0.113.0/24"]}, "backend": 2},
        {"name": "beta", "match": {"jwtClaims": [{"claim": "role", "in": ["beta"]}]}, "backend": 1}]  # fmt: skip


def token(key: Any = KEY, **claims: Any) -> str:
    body = {"iss": "https://auth.test", "aud": "shop", "exp": int(time.time()) + 600, **claims}
    return "Bearer " + jwt.encode(body, key, algorithm="ES256")


@pytest.fixture
async def gw(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, server=server_kind, listener_port=80, trusted_proxies=("127.0.0.0/8",))
    yield p
    await p.close()


async def svc(proxy: LocalProxy, **headers: str) -> str:
    async with proxy.session.get(proxy.url + "/", headers={"Host": "gw.test", **headers}) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["svc"])


def doc(urls: dict[str, str], weights: tuple[int, int, int], **rule: Any) -> dict[str, Any]:
    backends = list(zip(("v1", "v2", "v3"), weights, strict=True))
    return gateway_doc(urls, http_rule(backends=backends, **rule), jwt=JWT)


async def test_sticky_split_is_stable_and_monotone(
    gw: LocalProxy, stable: Upstream, canary: Upstream, third: Upstream
) -> None:
    urls = {"v1": stable.url, "v2": canary.url, "v3": third.url}
    await gw.put(doc(urls, (60, 30, 10), sticky=STICKY))
    users = [f"user-{i}" for i in range(60)]
    first = {u: await svc(gw, **{"X-User": u}) for u in users}
    assert set(first.values()) == {"stable", "canary", "third"}, "60 users cover the three backends"
    assert {u: await svc(gw, **{"X-User": u}) for u in users} == first, "each user stays where they were"
    await gw.put(doc(urls, (60, 30, 60), sticky=STICKY))
    grown = {u: await svc(gw, **{"X-User": u}) for u in users}
    moved = {u for u in users if grown[u] != first[u]}
    assert moved and all(grown[u] == "third" for u in moved), (
        "raising the last weight only moves users onto it"
    )
    assert all(grown[u] == "third" for u in users if first[u] == "third")
    subject = await svc(gw, Authorization=token(sub="user-7"))
    assert subject == grown["user-7"], "a verified sub is the first sticky key (same bucket as the header)"


async def test_pins_on_cidr_and_verified_claims(
    gw: LocalProxy, stable: Upstream, canary: Upstream, third: Upstream
) -> None:
    urls = {"v1": stable.url, "v2": canary.url, "v3": third.url}
    await gw.put(doc(urls, (100, 0, 0), pins=PINS))
    assert await svc(gw) == "stable"
    assert await svc(gw, **{"X-Forwarded-For": "203.0.113.9"}) == "third", "the office pin over weight 0"
    assert await svc(gw, Authorization=token(sub="a", role="beta")) == "canary", "a verified beta claim"
    assert await svc(gw, Authorization=token(FORGER, sub="a", role="beta")) == "stable", (
        "a forged token is not trusted"
    )
    unsigned = "Bearer " + jwt.encode(
        {"iss": "https://auth.test", "aud": "shop", "role": "beta"}, None, algorithm="none"
    )
    assert await svc(gw, Authorization=unsigned) == "stable"
    text = await (await gw.session.get(gw.admin + "/metrics")).text()
    assert 'reason="pin:office"' in text and 'reason="pin:beta"' in text
