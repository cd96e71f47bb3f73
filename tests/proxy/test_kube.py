"""Kube mode: the proxy follows route ConfigMaps through a real kube-apiserver (the test control plane)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from graylane.proxy.sources.kube import PAGE
from proxytest import LocalProxy, Upstream, dump, free_port, get_json, route_doc, start_local_proxy
from waiting import eventually_async


def configmap(ns: str, doc: dict[str, Any] | str, *, name: str = "graylane-route-shop-checkout",
              labelled: bool = True) -> dict[str, Any]:  # fmt: skip
    labels = {"graylane.io/route-config": "true"} if labelled else {}
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"route.json": doc if isinstance(doc, str) else dump(doc)},
    }  # fmt: skip


async def answer(p: LocalProxy) -> tuple[int, str | None]:
    async with p.session.get(p.url + "/") as resp:
        if resp.status != 200:
            return resp.status, None
        return 200, (await resp.json())["svc"]


async def test_kube_mode_follows_route_configmaps(
    kubeconfig: Path, kubectl: Any, k8s_namespace: str, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    ns = k8s_namespace
    await asyncio.to_thread(kubectl.apply, configmap(ns, route_doc(stable.url, canary.url, weight=100)))
    await asyncio.to_thread(kubectl.apply, configmap(ns, "{}", name="unrelated", labelled=False))
    p = await start_local_proxy(
        None, kube=True, namespaces=(ns,), kubeconfig=str(kubeconfig), server=server_kind
    )
    try:

        async def ready() -> bool:
            async with p.session.get(p.admin + "/readyz") as resp:
                return resp.status == 200

        await eventually_async(ready, what="ready after the first list")
        assert await answer(p) == (200, "canary")
        routes = await get_json(p.session, p.admin + "/routes")
        assert [r["source"] for r in routes["routes"]] == [f"{ns}/graylane-route-shop-checkout"]

        doc2 = route_doc(stable.url, canary.url, weight=0, generation=2)
        await asyncio.to_thread(kubectl.apply, configmap(ns, doc2))
        await eventually_async(lambda: _is(p, (200, "stable")), what="weight 0 applied from the watch")

        await asyncio.to_thread(kubectl.apply, configmap(ns, '{"schemaVersion": 1}'))

        async def rejected() -> bool:
            return bool((await get_json(p.session, p.admin + "/routes"))["rejected"])

        await eventually_async(rejected, what="bad document rejected")
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

        await eventually_async(hs_routed, what="HS256 secret read through the API")

        await asyncio.to_thread(kubectl, "delete", "configmap", "graylane-route-shop-checkout", "-n", ns)
        await eventually_async(lambda: _is(p, (404, None)), what="route removed with its ConfigMap")
        text = await (await p.session.get(p.admin + "/metrics")).text()
        assert "graylane_control_plane_connected 1" in text
    finally:
        await p.close()


async def test_kube_mode_follows_a_1_mib_document(
    kubectl: Any, k8s_namespace: str, kubeconfig: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    """A document at the ConfigMap limit: loaded from the list, and again when it changes (one watch event
    of more than 1 MiB, beyond aiohttp's default line limit)."""
    ns = k8s_namespace
    values = [f"user-{i:08d}-xxxxxxxx" for i in range(500)]
    rules = [{"name": f"u{i}", "to": "canary", "match": {"headers": [{"name": "X-User", "in": values}]}}
             for i in range(80)]  # fmt: skip

    def big(weight: int) -> dict[str, Any]:
        doc = route_doc(stable.url, canary.url, name="big", hosts=["big.test"], rules=rules, weight=weight,
                        generation=1 + weight)  # fmt: skip
        assert len(dump(doc).encode()) > 0.9 * 2**20
        return configmap(ns, doc, name="big")

    await asyncio.to_thread(kubectl, "create", "-f", "-", input=json.dumps(big(0)), timeout=120)
    p = await start_local_proxy(
        None, kube=True, namespaces=(ns,), kubeconfig=str(kubeconfig), server=server_kind
    )
    try:

        async def on(track: str) -> bool:
            async with p.session.get(p.url + "/", headers={"Host": "big.test"}) as resp:
                return resp.status == 200 and (await resp.json())["svc"] == track

        await eventually_async(lambda: on("stable"), what="the 1 MiB document, from the list")
        await asyncio.to_thread(kubectl, "replace", "-f", "-", input=json.dumps(big(100)), timeout=120)
        await eventually_async(lambda: on("canary"), what="the changed 1 MiB document, from the watch")
        text = await (await p.session.get(p.admin + "/metrics")).text()
        assert "graylane_control_plane_connected 1" in text
    finally:
        await p.close()


async def test_kube_mode_lists_in_pages_and_drops_what_a_relist_no_longer_holds(
    kubectl: Any, k8s_namespace: str, kubeconfig: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    """More ConfigMaps than three list pages hold, one of them invalid: every valid one is served from the
    paged list (the bad one rejected alone), and a deleted one goes."""
    ns, count = k8s_namespace, 2 * PAGE + 50
    docs = [route_doc(stable.url, canary.url, name=f"r{i}", hosts=[f"r{i}.test"]) for i in range(count)]
    items = [configmap(ns, doc, name=f"r{i}") for i, doc in enumerate(docs)]
    items.append(configmap(ns, "{not json", name="broken"))
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    await asyncio.to_thread(kubectl, "create", "-f", "-", input=body, timeout=300)
    p = await start_local_proxy(
        None, kube=True, namespaces=(ns,), kubeconfig=str(kubeconfig), server=server_kind
    )
    try:
        await eventually_async(lambda: is_ready(p), what="ready after listing every page", within=120)
        routes = await get_json(p.session, p.admin + "/routes")
        assert len(routes["routes"]) == count
        assert [r["source"] for r in routes["rejected"]] == [f"{ns}/broken"]
        for host in ("r0.test", f"r{PAGE}.test", f"r{count - 1}.test"):
            async with p.session.get(p.url + "/", headers={"Host": host}) as resp:
                assert resp.status == 200 and (await resp.json())["svc"] == "stable"
        await asyncio.to_thread(kubectl, "delete", "configmap", "-n", ns, f"r{count - 1}", timeout=60)

        async def gone() -> bool:
            async with p.session.get(p.url + "/", headers={"Host": f"r{count - 1}.test"}) as resp:
                return resp.status == 404

        await eventually_async(gone, what="the deleted ConfigMap's route gone")
    finally:
        await p.close()


async def is_ready(p: LocalProxy) -> bool:
    async with p.session.get(p.admin + "/readyz") as resp:
        return resp.status == 200


async def _is(p: LocalProxy, expected: tuple[int, str | None]) -> bool:
    return await answer(p) == expected


async def test_cold_start_without_the_api_is_not_ready_and_routes_nothing(
    tmp_path: Path, server_kind: str
) -> None:
    dead = tmp_path / "kubeconfig"
    dead.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:{free_port()}',"
        f" insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    p = await start_local_proxy(
        None, kube=True, namespaces=("graylane-system",), kubeconfig=str(dead), server=server_kind
    )
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
        await p.close()


class FakeApi:
    """The few ConfigMap endpoints of a kube-apiserver, for faults the real one will not produce on demand:
    a watch that ends cleanly, going away, coming back with different content, 410 Gone on a watch."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.items: dict[str, dict[str, Any]] = {}
        self.version = 100
        self.gone_once = False
        self.lists = 0
        self.watch_versions: list[str] = []
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.runner: web.AppRunner | None = None

    def put(self, doc: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        cm = configmap(self.ns, doc)
        cm["metadata"]["resourceVersion"] = str(self.version)
        self.items[cm["metadata"]["name"]] = cm
        return cm

    def modify(self, doc: dict[str, Any]) -> None:
        self.events.put_nowait({"type": "MODIFIED", "object": self.put(doc)})

    async def configmaps(self, request: web.Request) -> web.StreamResponse:
        assert request.query["labelSelector"] == "graylane.io/route-config=true"
        if "watch" not in request.query:
            self.lists += 1
            meta = {"resourceVersion": str(self.version)}
            return web.json_response(
                {"kind": "ConfigMapList", "metadata": meta, "items": list(self.items.values())}
            )
        self.watch_versions.append(request.query["resourceVersion"])
        if self.gone_once:
            self.gone_once = False
            return web.json_response({"kind": "Status", "code": 410, "reason": "Expired"}, status=410)
        resp = web.StreamResponse()
        await resp.prepare(request)
        while (event := await self.events.get()) is not None:
            await resp.write(json.dumps(event).encode() + b"\n")
        return resp  # None: the watch ends cleanly (as at timeoutSeconds)

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_get(f"/api/v1/namespaces/{self.ns}/configmaps", self.configmaps)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_watch_resume_outage_keeps_last_good_then_relist_after_410(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    port = free_port()
    api = FakeApi("graylane-system")
    api.put(route_doc(stable.url, canary.url, weight=100))
    await api.start(port)
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    p = await start_local_proxy(
        None, kube=True, namespaces=("graylane-system",), kubeconfig=str(cfg), server=server_kind
    )
    try:
        await eventually_async(lambda: _is(p, (200, "canary")), what="first list applied")
        api.modify(route_doc(stable.url, canary.url, weight=0, generation=2))
        await eventually_async(lambda: _is(p, (200, "stable")), what="MODIFIED event applied")

        lists, watches = api.lists, len(api.watch_versions)
        api.events.put_nowait(None)  # the watch ends cleanly: resume from the last version, no re-list
        await eventually_async(lambda: _true(len(api.watch_versions) > watches), what="watch resumed")
        assert api.watch_versions[-1] == str(api.version) and api.lists == lists

        await api.stop()  # the control plane goes away: the last good table keeps serving

        async def disconnected() -> bool:
            text = await (await p.session.get(p.admin + "/metrics")).text()
            return "graylane_control_plane_connected 0" in text

        await eventually_async(disconnected, what="disconnection noticed")
        for _ in range(5):
            assert await answer(p) == (200, "stable")
        async with p.session.get(p.admin + "/readyz") as resp:
            assert resp.status == 200

        api.put(route_doc(stable.url, canary.url, weight=100, generation=3))
        api.gone_once = True
        lists = api.lists
        await api.start(port)  # back, with news; the first watch says 410: list again
        await eventually_async(lambda: _is(p, (200, "canary")), what="re-listed after the outage", within=40)
        await eventually_async(lambda: _true(api.lists >= lists + 2), what="list, 410 on watch, list again")
    finally:
        await p.close()
        if api.runner is not None:
            api.events.put_nowait(None)
            await api.runner.cleanup()


async def _true(value: bool) -> bool:
    return value
