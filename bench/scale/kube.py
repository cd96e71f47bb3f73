"""The kube-mode rows of ``make bench-scale``: a proxy following N route ConfigMaps through the API.

* N ConfigMaps (the rendered documents, as the operator writes them) created in one namespace.
* ``graylane-proxy --kube``: start to ``/readyz`` 200 (paginated list + watch), CPU, RSS, high-water mark.
* One ConfigMap patched with a new weight -> that proxy's ``/explain`` shows it: p50/p99 from the moment the
  API server answered the PATCH (and from sending it).
* A burst: 1,000 PATCHes over 100 routes in about a second -> every last version served; swaps, coalesced.
* Fan-out: ``proxies`` kube-mode proxies on the same ConfigMaps; weight patches served by all of them
  (p50/p99 over every proxy and patch); the API server's CPU and RSS while they list and while they follow;
  the bytes one update puts on every watch, for the model of 100 and 1,000 proxies.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
from api import Api
from common import Results, cpu_seconds, percentile, proc_status, spawn_proxy
from graylane.operator.configmaps import configmap_body

from graylane.compile import names
from graylane.config.document import canonical_json, seal


def configmaps(docs: Path, namespace: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(docs.glob("*.json")):
        doc = json.loads(path.read_text())
        route = doc["route"]
        name = names.route_configmap_name(route["namespace"], route["name"])
        out.append(configmap_body(namespace, name, (route["namespace"], route["name"], route["uid"]), doc))
    return out


def target(doc: dict[str, Any]) -> tuple[str, str]:
    """A host and path this route serves (for ``/explain``)."""
    host = doc["hosts"][0].replace("*.", "x.") if doc["hosts"] else "any.example.com"
    return host, doc["pathPrefix"]


async def weight_of(session: aiohttp.ClientSession, admin: str, host: str, path: str) -> float | None:
    query = urllib.parse.urlencode({"host": host, "path": path})
    try:
        async with session.get(f"{admin}/explain?{query}") as resp:
            if resp.status != 200:
                return None
            weight = (await resp.json()).get("weight")
    except aiohttp.ClientError:
        return None
    return float(weight) if weight is not None else None


async def served_after(
    session: aiohttp.ClientSession, admin: str, doc: dict[str, Any], since: float
) -> float:
    """Seconds from ``since`` until ``admin`` serves ``doc``'s weight (polled every 2 ms)."""
    host, path = target(doc)
    weight = float(doc["weight"])
    for _ in range(30_000):  # a minute at most
        if await weight_of(session, admin, host, path) == weight:
            return time.monotonic() - since
        await asyncio.sleep(0.002)
    raise TimeoutError(f"{admin} never served weight {weight} for {host}{path}")


async def patch_weight(api: Api, cm: dict[str, Any], weight: float) -> tuple[dict[str, Any], float, float]:
    """PATCH the ConfigMap's document to ``weight``; (document, sent at, answered at)."""
    doc = json.loads(cm["data"]["route.json"])
    doc["weight"] = weight
    doc["route"]["generation"] += 1
    doc = seal(doc)
    cm["data"]["route.json"] = canonical_json(doc)
    body = {"data": {"route.json": cm["data"]["route.json"]},
            "metadata": {"annotations": {"graylane.io/checksum": doc["checksum"]}}}  # fmt: skip
    sent = time.monotonic()
    status, answer = await api.patch(f"/api/v1/namespaces/{cm['metadata']['namespace']}/configmaps/"
                                     f"{cm['metadata']['name']}", body)  # fmt: skip
    if status != 200:
        raise RuntimeError(f"patch: {status} {answer}")
    return doc, sent, time.monotonic()


async def one_proxy(api: Api, cms: list[dict[str, Any]], namespace: str, kubeconfig: Path, logs: Path,
                    results: Results, *, changes: int) -> None:  # fmt: skip
    args = ["--kube", "--namespace", namespace]
    p = spawn_proxy(args, logs / "proxy-kube.log", env={"KUBECONFIG": str(kubeconfig)})
    try:
        ready = await asyncio.to_thread(p.wait_ready)
        results.put("kube_ready_s", round(ready, 1))
        results.put("kube_ready_cpu_s", round(cpu_seconds(p.proc.pid), 1))
        await asyncio.sleep(2)
        results.put("kube_rss_mib", round(proc_status(p.proc.pid, "VmRSS")))
        results.put("kube_hwm_mib", round(proc_status(p.proc.pid, "VmHWM")))
        async with aiohttp.ClientSession() as session:
            accepted, sent = [], []
            for i in range(changes):
                cm = cms[(i * 7919) % len(cms)]
                doc, started, answered = await patch_weight(api, cm, 41.0 + i % 2)
                await served_after(session, p.admin, doc, answered)
                done = time.monotonic()
                accepted.append(done - answered)
                sent.append(done - started)
            results.put("kube_change_p50_ms", round(percentile(accepted, 50) * 1000, 1))
            results.put("kube_change_p99_ms", round(percentile(accepted, 99) * 1000, 1))
            results.put("kube_change_from_send_p99_ms", round(percentile(sent, 99) * 1000, 1))
            await burst(api, session, cms, p, results)
    finally:
        p.stop()


async def burst(api: Api, session: aiohttp.ClientSession, cms: list[dict[str, Any]], p: Any,
                results: Results) -> None:  # fmt: skip
    """1,000 PATCHes over 100 routes, 10 each, as fast as the API server takes them (16 at a time)."""
    before = await asyncio.to_thread(p.metric, "graylane_config_reloads_total")
    coalesced = await asyncio.to_thread(p.metric, "graylane_config_coalesced_total")
    chosen = [cms[(i * 101) % len(cms)] for i in range(100)]
    last: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for round_ in range(10):
        sent = await asyncio.gather(*(patch_weight(api, cm, float(round_ * 10 + 1)) for cm in chosen))
        for cm, (doc, _, _) in zip(chosen, sent, strict=True):
            last[cm["metadata"]["name"]] = doc
    written = time.monotonic()
    await asyncio.gather(*(served_after(session, p.admin, doc, written) for doc in last.values()))
    settled = time.monotonic() - written
    results.put("kube_burst_writes_s", round(written - started, 2))
    results.put("kube_burst_last_served_ms", round(settled * 1000, 1))
    results.put(
        "kube_burst_swaps", int(await asyncio.to_thread(p.metric, "graylane_config_reloads_total") - before)
    )
    now_coalesced = await asyncio.to_thread(p.metric, "graylane_config_coalesced_total")
    results.put("kube_burst_coalesced", int(now_coalesced - coalesced))


async def fan_out(api: Api, cms: list[dict[str, Any]], namespace: str, kubeconfig: Path, logs: Path,
                  apiserver: int | None, results: Results, *, proxies: int,
                  patches: int) -> None:  # fmt: skip
    env = {"KUBECONFIG": str(kubeconfig)}
    cpu0 = cpu_seconds(apiserver) if apiserver else 0.0
    started = time.monotonic()
    fleet = [spawn_proxy(["--kube", "--namespace", namespace], logs / f"proxy-fan-{i}.log", env=env)
             for i in range(proxies)]  # fmt: skip
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 1800) for p in fleet))
        results.put("fanout_all_ready_s", round(time.monotonic() - started, 1))
        if apiserver:
            results.put("fanout_list_apiserver_cpu_s", round(cpu_seconds(apiserver) - cpu0, 1))
            results.put("fanout_apiserver_rss_mib", round(proc_status(apiserver, "VmRSS")))
        await asyncio.sleep(5)
        cpu1 = cpu_seconds(apiserver) if apiserver else 0.0
        follow_started = time.monotonic()
        latencies: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=proxies * 2)) as session:
            for i in range(patches):
                cm = cms[(i * 613) % len(cms)]
                doc, _, answered = await patch_weight(api, cm, 61.0 + i % 3)
                latencies += await asyncio.gather(
                    *(served_after(session, p.admin, doc, answered) for p in fleet)
                )
                await asyncio.sleep(0.5)
        spent = time.monotonic() - follow_started
        results.put("fanout_p50_ms", round(percentile(latencies, 50) * 1000, 1))
        results.put("fanout_p99_ms", round(percentile(latencies, 99) * 1000, 1))
        if apiserver:
            cpu = cpu_seconds(apiserver) - cpu1
            results.put("fanout_follow_apiserver_cpu_pct", round(100 * cpu / spent, 1))
            results.put("fanout_apiserver_hwm_mib", round(proc_status(apiserver, "VmHWM")))
        results.put(
            "fanout_proxy_rss_mib", round(sum(proc_status(p.proc.pid, "VmRSS") for p in fleet) / len(fleet))
        )
        results.note(f"fan-out: {proxies} proxies x {patches} patches = {len(latencies)} samples "
                     "(the poll of 20 proxies every 2 ms adds its own load)")  # fmt: skip
    finally:
        for p in fleet:
            p.stop()


async def update_bytes(api: Api, cms: list[dict[str, Any]], namespace: str, results: Results) -> None:
    """The size of one MODIFIED event on a watch, and of one ConfigMap in a list, as the proxies get them."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    listed, version = await api.list(path, selector="graylane.io/route-config=true", page=50)
    per_item = sum(len(json.dumps(i, separators=(",", ":"))) for i in listed[:50]) / min(len(listed), 50)
    results.put("list_bytes_per_configmap", round(per_item))

    async def watch() -> int:
        async for _, size, _ in api.watch(path, version, selector="graylane.io/route-config=true"):
            return size
        return 0

    task = asyncio.create_task(watch())
    await asyncio.sleep(1)
    await patch_weight(api, cms[5], 12.0)
    results.put("watch_event_bytes", await asyncio.wait_for(task, 30))
