"""The operator rows of ``make bench-scale``: N CanaryRoutes x 2 Upstreams at once, restart, shared Upstream.

* The operator runs as a real process (``graylane-operator``, the chart's arguments) against the control
  plane. Every object goes in through the API, 16 requests at a time, Upstreams first; the clock starts
  before the first create. "Ready" = Ready=True for the route's current generation, followed on a watch of
  the routes. Peak RSS is the process's VmHWM.
* Restart: the resourceVersions of every route, Upstream and route ConfigMap before a restart and once the
  new operator has gone through every route (its first resync) and is idle: how many changed (bar: none).
* The Upstream shared by 500 routes changes (``timeoutSeconds``): time until the 500 route ConfigMaps are
  rewritten and a kube-mode proxy serves all of them; ConfigMap writes for the other routes (bar: none).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import kubebench
from api import GROUP, Api
from common import Results, cpu_seconds, get, proc_status, spawn_proxy

SHARED = "shared-canary"
SHARED_ROUTES = 500


def is_ready(route: dict[str, Any]) -> bool:
    status = route.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return conds.get("Ready") == "True" and status.get("observedGeneration") == route["metadata"].get(
        "generation"
    )


async def create_and_wait(api: Api, objects: list[dict[str, Any]], routes_ns: str, results: Results) -> None:
    """Create everything, then count Ready routes on a paginated list every 2 s (a watch may end)."""
    total = sum(1 for o in objects if o["kind"] == "CanaryRoute")
    path = f"{GROUP}/namespaces/{routes_ns}/canaryroutes"
    started = time.monotonic()
    await api.create_all(objects)
    results.put("operator_create_s", round(time.monotonic() - started, 1))
    while True:
        items, _ = await api.list(path)
        ready = sum(1 for item in items if is_ready(item))
        if ready >= total:
            break
        if time.monotonic() - started > 1800:
            raise TimeoutError(f"{ready} of {total} routes Ready after 30 min")
        await asyncio.sleep(2)
    results.put("operator_ready_s", round(time.monotonic() - started, 1))


async def versions(api: Api, routes_ns: str, config_ns: str) -> dict[str, str]:
    out = {}
    for kind, path, selector in (
        ("route", f"{GROUP}/namespaces/{routes_ns}/canaryroutes", ""),
        ("upstream", f"{GROUP}/namespaces/{routes_ns}/upstreams", ""),
        ("configmap", f"/api/v1/namespaces/{config_ns}/configmaps", "graylane.io/route-config=true"),
    ):
        items, _ = await api.list(path, selector=selector)
        out |= {f"{kind}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}
    return out


def wait_idle(pid: int, log: Path | None, *, deadline: float = 1800) -> float:
    """Seconds until the operator logged its first resync (with ``log``: every route it had indexed by
    then was reconciled, the others by their own events) and then used < 5 % CPU for 5 s."""
    started = time.monotonic()
    if log is not None:
        kubebench.poll(lambda: "Resynced" in log.read_text(errors="replace"), deadline=deadline, interval=1)
    while time.monotonic() - started < deadline:
        before = cpu_seconds(pid)
        time.sleep(5)
        if cpu_seconds(pid) - before < 0.25:
            return time.monotonic() - started - 5
    raise TimeoutError("the operator never went idle")


async def restart(api: Api, kubeconfig: Path, operator_cmd: list[str], logs: Path, routes_ns: str,
                  config_ns: str, routes: int, results: Results) -> None:  # fmt: skip
    before = await versions(api, routes_ns, config_ns)
    log = logs / "operator-restarted.log"
    with kubebench.process(operator_cmd, kubeconfig, log) as proc:
        idle = await asyncio.to_thread(wait_idle, proc.pid, log)
        results.put("restart_idle_s", round(idle, 1))
        results.put("restart_cpu_s", round(cpu_seconds(proc.pid), 1))
        after = await versions(api, routes_ns, config_ns)
    changed = sorted(k for k in before if after.get(k) != before[k])
    results.put("restart_writes", len(changed))
    if changed:
        results.note(f"restart rewrote {changed[:5]}")


async def shared_upstream(api: Api, kubeconfig: Path, logs: Path, routes_ns: str, config_ns: str,
                          results: Results) -> None:  # fmt: skip
    cms_path = f"/api/v1/namespaces/{config_ns}/configmaps"
    affected = {f"graylane-route-{routes_ns}-svc-{i}" for i in range(SHARED_ROUTES)}
    proxy = spawn_proxy(["--kube", "--namespace", config_ns], logs / "proxy-shared.log",
                        env={"KUBECONFIG": str(kubeconfig)})  # fmt: skip
    try:
        await asyncio.to_thread(proxy.wait_ready, 1800)
        written: dict[str, str] = {}
        others: list[str] = []
        _, version = await api.list(cms_path, selector="graylane.io/route-config=true")

        async def watch() -> None:
            async for _, _, event in api.watch(cms_path, version, selector="graylane.io/route-config=true"):
                name = event["object"]["metadata"]["name"]
                checksum = event["object"]["metadata"]["annotations"]["graylane.io/checksum"]
                (written.__setitem__(name, checksum) if name in affected else others.append(name))

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(1)
        started = time.monotonic()
        status, body = await api.patch(f"{GROUP}/namespaces/{routes_ns}/upstreams/{SHARED}",
                                       {"spec": {"timeoutSeconds": 45}})  # fmt: skip
        if status != 200:
            raise RuntimeError(f"patch Upstream: {status} {body}")
        await asyncio.to_thread(
            kubebench.poll, lambda: len(written) >= len(affected), deadline=600, interval=0.05
        )
        results.put("shared_written_s", round(time.monotonic() - started, 1))
        await asyncio.to_thread(kubebench.poll, lambda: _serves(proxy, written), deadline=600, interval=0.5)
        results.put("shared_served_s", round(time.monotonic() - started, 1))
        await asyncio.sleep(10)
        watcher.cancel()
        results.put("shared_other_writes", len(others))
    finally:
        proxy.stop()


def _serves(proxy: Any, written: dict[str, str]) -> bool:
    status, body = get(proxy.admin + "/routes", timeout=60)
    if status != 200:
        return False
    served = {r["source"].split("/", 1)[1]: r["checksum"] for r in json.loads(body)["routes"]}
    return all(served.get(name) == checksum for name, checksum in written.items())


async def operator_rows(api: Api, kubeconfig: Path, objects: list[dict[str, Any]], routes_ns: str,
                        config_ns: str, logs: Path, results: Results) -> None:  # fmt: skip
    cmd = kubebench.operator_args(routes_ns, config_ns)
    routes = sum(1 for o in objects if o["kind"] == "CanaryRoute")
    with kubebench.process(cmd, kubeconfig, logs / "operator.log") as proc:
        await asyncio.sleep(3)  # the operator is up and watching before the flood
        await create_and_wait(api, objects, routes_ns, results)
        results.put("operator_peak_mib", round(proc_status(proc.pid, "VmHWM")))
        results.put("operator_cpu_s", round(cpu_seconds(proc.pid), 1))
        await asyncio.to_thread(wait_idle, proc.pid, None)
    await restart(api, kubeconfig, cmd, logs, routes_ns, config_ns, routes, results)
    with kubebench.process(cmd, kubeconfig, logs / "operator-shared.log") as proc:
        await asyncio.to_thread(wait_idle, proc.pid, logs / "operator-shared.log")
        await shared_upstream(api, kubeconfig, logs, routes_ns, config_ns, results)
