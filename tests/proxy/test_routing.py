# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""End to end through the in-process proxy: every rule type, weights, sticky split, versionRouting, JWT."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from proxytest import LocalProxy, Upstream, get_json, route_doc, rule, start_local_proxy

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWT_SETTINGS = {"issuer": "https://auth.test", "audiences": ["shop"], "algorithms": ["RS256"], "leewaySeconds": 30,
                "publicKeys": [PEM], "jwksURL": None, "secretRef": None}  # fmt: skip


def token(key: Any = KEY, **claims: Any) -> str:
    body = {"iss": "https://auth.test", "aud": "shop", "exp": int(time.time()) + 600, **claims}
    return jwt.encode(body, key, algorithm="RS256")


async def svc(proxy: LocalProxy, path: str = "/", **kw: Any) -> str:
    async with proxy.session.get(proxy.url + path, **kw) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["svc"])


# -- one table, one row per rule type --------------------------------------------------------------------
RULE_CASES = [
    # header
    ("header exact", {"headers": [{"name": "X-Canary", "exact": "true"}]}, {"headers": {"x-canary": "true"}}, {"headers": {"X-Canary": "false"}}),
    ("header prefix", {"headers": [{"name": "X-Beta", "prefix": "yes"}]}, {"headers": {"X-Beta": "yes-please"}}, {"headers": {"X-Beta": "no"}}),
    ("header regex", {"headers": [{"name": "X-Ver", "regex": "v[0-9]+"}]}, {"headers": {"X-Ver": "v12"}}, {"headers": {"X-Ver": "v12x"}}),
    ("header present", {"headers": [{"name": "X-Debug", "present": True}]}, {"headers": {"X-Debug": ""}}, {}),
    ("header invert", {"headers": [{"name": "X-Legacy", "present": True, "invert": True}]}, {}, {"headers": {"X-Legacy": "1"}}),
    # query, cookie, method, path
    ("query", {"query": [{"name": "use_canary", "exact": "true"}]}, {"params": {"use_canary": "true"}}, {"params": {"use_canary": "1"}}),
    ("cookie", {"cookies": [{"name": "flag", "in": ["a", "b"]}]}, {"headers": {"Cookie": "x=1; flag=b"}}, {"headers": {"Cookie": "flag=c"}}),
    ("method", {"methods": ["DELETE"]}, {"method": "DELETE"}, {"method": "GET"}),
    ("path", {"path": {"prefix": "/beta/"}}, {"path": "/beta/x"}, {"path": "/alpha/x"}),
    # client address through a trusted proxy (loopback is trusted in these tests)
    ("cidr v4", {"sourceCIDRs": ["203.0.113.0/24"]}, {"headers": {"X-Forwarded-For": "203.0.113.9"}}, {"headers": {"X-Forwarded-For": "198.51.100.1"}}),
    ("cidr v6", {"sourceCIDRs": ["2001:db8::/32"]}, {"headers": {"X-Forwarded-For": "2001:db8::5"}}, {"headers": {"X-Forwarded-For": "2001:db9::5"}}),
    ("country", {"sourceCountries": ["GB"]}, {"headers": {"X-Forwarded-For": "141.1.1.1"}}, {"headers": {"X-Forwarded-For": "8.8.8.8"}}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "match", "hit", "miss"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
async def test_rule_types_route_end_to_end(
    proxy: LocalProxy, stable: Upstream, canary: Upstream, case: str, match: dict[str, Any],
    hit: dict[str, Any], miss: dict[str, Any],
) -> None:  # fmt: skip
    await proxy.put(route_doc(stable.url, canary.url, rules=[rule("r", "canary", **match)]))
    for request, expected in ((hit, "canary"), (miss, "stable")):
        method = request.get("method", "GET")
        path = request.get("path", "/x")
        kw = {k: v for k, v in request.items() if k not in ("method", "path")}
        async with proxy.session.request(method, proxy.url + path, **kw) as resp:
            assert resp.status == 200
            assert (await resp.json())["svc"] == expected, (case, request)


async def test_jwt_claim_rule_uses_only_verified_tokens(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    doc = route_doc(stable.url, canary.url, jwt=JWT_SETTINGS,
                    rules=[rule("beta", "canary", jwtClaims=[{"claim": "roles", "in": ["beta"]}])])  # fmt: skip
    await proxy.put(doc)
    good = token(roles=["user", "beta"])
    assert await svc(proxy, headers={"Authorization": f"Bearer {good}"}) == "canary"
    forged = token(OTHER_KEY, roles=["beta"])
    expired = token(roles=["beta"], exp=int(time.time()) - 3600)
    unsigned = jwt.encode({"iss": "https://auth.test", "aud": "shop", "roles": ["beta"],
                           "exp": int(time.time()) + 60}, None, algorithm="none")  # fmt: skip
    for bad in (forged, expired, unsigned, "garbage"):
        assert await svc(proxy, headers={"Authorization": f"Bearer {bad}"}) == "stable"
    text = await (await proxy.session.get(proxy.admin + "/metrics")).text()
    assert 'graylane_jwt_rejected_total{reason="bad-signature"} 1' in text
    assert 'graylane_jwt_rejected_total{reason="expired"} 1' in text


async def test_weights_0_and_100(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(route_doc(stable.url, canary.url, weight=100))
    assert {await svc(proxy) for _ in range(10)} == {"canary"}
    await proxy.put(route_doc(stable.url, canary.url, weight=0, generation=2))
    assert {await svc(proxy) for _ in range(10)} == {"stable"}


async def test_random_split_without_sticky_key_is_near_the_weight(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, weight=30))
    got = [await svc(proxy) for _ in range(300)]
    share = got.count("canary") / len(got)
    assert 0.18 < share < 0.42, share  # 300 draws at p=0.3: > 4 sigma margin


async def test_sticky_split_keeps_users_and_moves_only_stable_to_canary(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    sticky = {"keys": ["header:X-User-Id"]}
    users = [f"user-{i}" for i in range(60)]
    await proxy.put(route_doc(stable.url, canary.url, weight=20, sticky=sticky))
    at20 = {u: await svc(proxy, headers={"X-User-Id": u}) for u in users}
    again = {u: await svc(proxy, headers={"X-User-Id": u}) for u in users}
    assert at20 == again
    assert "canary" in at20.values() and "stable" in at20.values()
    await proxy.put(route_doc(stable.url, canary.url, weight=60, sticky=sticky, generation=2))
    at60 = {u: await svc(proxy, headers={"X-User-Id": u}) for u in users}
    assert all(at60[u] == "canary" for u in users if at20[u] == "canary")
    assert list(at60.values()).count("canary") > list(at20.values()).count("canary")


async def test_version_header_selects_upstream_by_metadata(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    vr = {"header": "X-Version", "metadataKey": "version", "candidates": ["v1", "v2"]}
    await proxy.put(route_doc(stable.url, canary.url, versionRouting=vr,
                              rules=[rule("all", "stable", methods=["GET"])]))  # fmt: skip
    assert await svc(proxy, headers={"X-Version": "v2"}) == "canary"
    assert await svc(proxy, headers={"X-Version": "v1"}) == "stable"
    assert await svc(proxy, headers={"X-Version": "v9"}) == "stable"


async def test_two_routes_longest_prefix_wins_and_conflicts_are_listed(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, name="shop", pathPrefix="/"), "shop.json")
    await proxy.put(route_doc(canary.url, stable.url, name="api", pathPrefix="/api"), "api.json")
    assert await svc(proxy, "/api/orders") == "canary"  # route "api" (its stable is the canary upstream)
    assert await svc(proxy, "/home") == "stable"
    await proxy.put(route_doc(canary.url, stable.url, name="api2", pathPrefix="/api"), "api2.json")
    routes = await get_json(proxy.session, proxy.admin + "/routes")
    assert len(routes["conflicts"]) == 1 and "shop/api2" in routes["conflicts"][0]


async def test_no_route_is_404_and_host_and_prefix_pick_the_route(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, canary.url, hosts=["shop.example.com"], pathPrefix="/api"))
    assert await svc(proxy, "/api/x", headers={"Host": "shop.example.com:8080"}) == "stable"
    for path, host in (
        ("/api/x", "other.example.com"),
        ("/apix", "shop.example.com"),
        ("/", "shop.example.com"),
    ):
        async with proxy.session.get(proxy.url + path, headers={"Host": host}) as resp:
            assert resp.status == 404
            assert await resp.text() == "404 Not Found\n"


async def test_decisions_and_requests_are_counted_per_route_track_and_reason(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(
        route_doc(
            stable.url,
            canary.url,
            rules=[rule("qa", "canary", headers=[{"name": "X-Canary", "exact": "true"}])],
        )
    )
    await svc(proxy, headers={"X-Canary": "true"})
    await svc(proxy)
    text = await (await proxy.session.get(proxy.admin + "/metrics")).text()
    assert 'graylane_decisions_total{route="shop/checkout",track="canary",reason="rule:qa"} 1' in text
    assert 'graylane_decisions_total{route="shop/checkout",track="stable",reason="stable"} 1' in text
    assert 'graylane_requests_total{route="shop/checkout",track="canary",code="200"} 1' in text
    assert 'graylane_request_duration_seconds_count{route="shop/checkout",track="stable"} 1' in text
    assert 'graylane_config_generation{route="shop/checkout"} 1' in text


async def test_explain_get_and_post(proxy: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    await proxy.put(
        route_doc(
            stable.url,
            canary.url,
            rules=[rule("qa", "canary", headers=[{"name": "X-Canary", "exact": "true"}])],
        )
    )
    got = await get_json(proxy.session, proxy.admin + "/explain?path=/x&header=X-Canary:true")
    assert (got["route"], got["track"], got["upstream"], got["reason"]) == (
        "shop/checkout",
        "canary",
        "v2",
        "rule:qa",
    )
    async with proxy.session.post(
        proxy.admin + "/explain", json={"path": "/x", "headers": {}, "sample": 0.5}
    ) as resp:
        got = await resp.json()
    assert (got["track"], got["reason"]) == ("stable", "stable")
    async with proxy.session.post(proxy.admin + "/explain", json={"headers": "nope"}) as resp:
        assert resp.status == 400


async def test_hs256_secret_ref_from_a_mounted_secret_dir(
    stable: Upstream, canary: Upstream, tmp_path: Any, server_kind: str
) -> None:
    secret = b"s" * 48
    (tmp_path / "secrets" / "graylane-jwt-shop").mkdir(parents=True)
    (tmp_path / "secrets" / "graylane-jwt-shop" / "hmac").write_bytes(secret)
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, secrets_dir=tmp_path / "secrets", server=server_kind)
    try:
        settings = {**JWT_SETTINGS, "algorithms": ["HS256"], "publicKeys": [],
                    "secretRef": {"name": "graylane-jwt-shop", "key": "hmac"}}  # fmt: skip
        await p.put(route_doc(stable.url, canary.url, jwt=settings,
                              rules=[rule("beta", "canary", jwtClaims=[{"claim": "role", "exact": "beta"}])]))  # fmt: skip
        claims = {"iss": "https://auth.test", "aud": "shop", "role": "beta", "exp": int(time.time()) + 60}
        assert (
            await svc(p, headers={"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")})
            == "canary"
        )
        wrong = jwt.encode(claims, b"w" * 48, algorithm="HS256")
        assert await svc(p, headers={"Authorization": f"Bearer {wrong}"}) == "stable"
        rs_as_hs = jwt.encode(claims, KEY, algorithm="RS256")  # an RS token is never checked with the secret
        assert await svc(p, headers={"Authorization": f"Bearer {rs_as_hs}"}) == "stable"
    finally:
        await p.close()
