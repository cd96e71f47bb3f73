"""Kube mode: the proxy follows route ConfigMaps through a real kube-apiserver (the test control plane)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from proxytest import LocalProxy, Upstream, dump, free_port, get_json, route_doc, start_local_proxy


def configmap(ns: str, doc: dict[str, Any] | str, *, name: str = "graylane-route-shop-checkout",
              labelled: bool = True) -> dict[str, Any]:  # fmt: skip
    labels = {"graylane.io/route-config": "true"} if labelled else {}
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"route.json": doc if isinstance(doc, str) else dump(doc)},
    }  # fmt: skip


async def eventually(check: Callable[[], Any], what: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)


async def answer(p: LocalProxy) -> tuple[int, str | None]:
    async with p.session.get(p.url + "/") as resp:
        if resp.status != 200:
            return resp.status, None
        return 200, (await resp.json())["svc"]


async def test_kube_mode_follows_route_configmaps(
    kubeconfig: Path, kubectl: Any, k8s_namespace: str, stable: Upstream, canary: Upstream
) -> None:
    ns = k8s_namespace
    await asyncio.to_thread(kubectl.apply, configmap(ns, route_doc(stable.url, canary.url, weight=100)))
    await asyncio.to_thread(kubectl.apply, configmap(ns, "{}", name="unrelated", labelled=False))
    p = await start_local_proxy(None, kube=True, namespaces=(ns,), kubeconfig=str(kubeconfig))
    try:

        async def ready() -> bool:
            async with p.session.get(p.admin + "/readyz") as resp:
                return resp.status == 200

        await eventually(ready, "ready after the first list")
        assert await answer(p) == (200, "canary")
        routes = await get_json(p.session, p.admin + "/routes")
        assert [r["source"] for r in routes["routes"]] == [f"{ns}/graylane-route-shop-checkout"]

        doc2 = route_doc(stable.url, canary.url, weight=0, generation=2)
        await asyncio.to_thread(kubectl.apply, configmap(ns, doc2))
        await eventually(lambda: _is(p, (200, "stable")), "weight 0 applied from the watch")

        await asyncio.to_thread(kubectl.apply, configmap(ns, '{"schemaVersion": 1}'))

        async def rejected() -> bool:
            return bool((await get_json(p.session, p.admin + "/routes"))["rejected"])

        await eventually(rejected, "bad document rejected")
        assert await answer(p) == (200, "stable")  # the last good version keeps serving

        # an HS256 route whose secret the operator mirrored into a Secret beside the ConfigMaps
        secret = b"k" * 40
        await asyncio.to_thread(kubectl.apply, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "graylane-jwt-shop", "namespace": ns},
            "data": {"hmac": base64.b64encode(secret).decode()},
        })  # fmt: skip
        hs = {"issuer": "https://auth.test", "audiences": ["shop"], "algorithms": ["HS256"],
              "leewaySeconds": 30, "publicKeys": [], "jwksURL": None,
              "secretRef": {"name": "graylane-jwt-shop", "key": "hmac"}}  # fmt: skip
        rules = [
            {"name": "beta", "to": "canary", "match": {"jwtClaims": [{"claim": "role", "exact": "beta"}]}}
        ]
        await asyncio.to_thread(kubectl.apply, configmap(ns, route_doc(stable.url, canary.url, generation=3,
                                                                       jwt=hs, rules=rules)))  # fmt: skip
        claims = {"iss": "https://auth.test", "aud": "shop", "role": "beta", "exp": int(time.time()) + 300}
        auth = {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}

        async def hs_routed() -> bool:
            async with p.session.get(p.url + "/", headers=auth) as resp:
                return resp.status == 200 and (await resp.json())["svc"] == "canary"

        await eventually(hs_routed, "HS256 secret read through the API")

        await asyncio.to_thread(kubectl, "delete", "configmap", "graylane-route-shop-checkout", "-n", ns)
        await eventually(lambda: _is(p, (404, None)), "route removed with its ConfigMap")
        text = await (await p.session.get(p.admin + "/metrics")).text()
        assert "graylane_control_plane_connected 1" in text
    finally:
        await p.session.close()
        await p.runner.cleanup()


async def _is(p: LocalProxy, expected: tuple[int, str | None]) -> bool:
    return await answer(p) == expected


async def test_cold_start_without_the_api_is_not_ready_and_routes_nothing(tmp_path: Path) -> None:
    dead = tmp_path / "kubeconfig"
    dead.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:{free_port()}',"
        f" insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    p = await start_local_proxy(None, kube=True, namespaces=("graylane-system",), kubeconfig=str(dead))
    try:
        for _ in range(3):
            async with p.session.get(p.admin + "/readyz") as resp:
                assert resp.status == 503
            assert await answer(p) == (503, None)
            await asyncio.sleep(0.3)
        text = await (await p.session.get(p.admin + "/metrics")).text()
        assert "graylane_control_plane_connected 0" in text
        async with p.session.get(p.admin + "/healthz") as resp:
            assert resp.status == 200
    finally:
        await p.session.close()
        await p.runner.cleanup()
