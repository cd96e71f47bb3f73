"""The operator rows of ``make bench-scale``: N CanaryRoutes x 2 Upstreams at once, restart, shared Upstream.

    python bench/scale/operator.py --routes 10000 [--kubeconfig PATH]

* The operator runs as a real process with the chart's arguments against the local control plane (or
  ``--kubeconfig``). The objects of ``generate.py`` (the issue's shape) go in through the API, 16 requests
  at a time, Upstreams first; the clock starts before the first create. "Ready" = Ready=True for the
  route's current generation, seen on a watch of the routes (and checked by one list once all are). CPU
  seconds of the API server, etcd, the operator, the bench and the rest of the machine, while creating and
  after. Peak RSS is the process's VmHWM. API writes are the operator's own count ("Idle after N
  reconciles (W API writes since start)" in its log).
* Restart: the resourceVersions of every route, Upstream and route ConfigMap before a restart and once the
  new operator says it is idle after reconciling every route: how many changed, and how many writes it
  made (bar: none).
* The Upstream shared by 500 routes changes (``timeoutSeconds``): time until their 500 ConfigMaps are
  rewritten and a kube-mode proxy serves every one, and the writes seen for any other route's ConfigMap or
  status (bar: none) -- on watches of both.

Prints one line per figure and writes them to ``.graylane/bench-scale-operator.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
import kubebench  # noqa: E402
from api import GROUP, Api  # noqa: E402
from cluster.ports import free_port  # noqa: E402
from common import cpu_seconds  # noqa: E402

IDLE = re.compile(r"Idle after (\d+) reconciles \((\d+) API writes since start\)")
BEFORE = {"operator_ready_s": "5,326 of 10,000 Ready after 8 min (Kopf handlers)", "operator_peak_mib": "634"}
BARS = {"operator_ready_s": 120.0, "operator_peak_mib": 300.0, "restart_writes": 0, "shared_other_writes": 0}


def is_ready(route: dict[str, Any]) -> bool:
    status = route.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return conds.get("Ready") == "True" and status.get("observedGeneration") == route["metadata"].get(
        "generation"
    )


def idle(log: Path) -> tuple[int, int] | None:
    found = IDLE.findall(log.read_text(errors="replace"))
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of each measured process (and of the machine) between ``mark`` calls: where the wall
    time of a phase went."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.last = self.sample()

    def sample(self) -> dict[str, float]:
        found = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        found["bench"] = time.process_time()
        found["machine"] = machine_busy_seconds()
        return found

    def mark(self) -> dict[str, float]:
        now = self.sample()
        spent = {name: round(now[name] - self.last[name], 1) for name in now}
        spent["others"] = round(spent["machine"] - sum(v for k, v in spent.items() if k != "machine"), 1)
        self.last = now
        return spent


async def wait_for(check: Callable[[], Any], *, deadline: float, interval: float = 0.5) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        await asyncio.sleep(interval)
    raise TimeoutError(f"not within {deadline}s")


class ReadyWatch:
    """The routes Ready=True for their generation, as a watch of the CanaryRoutes tells it, and when they
    all were. A watch, not lists: listing 10,000 routes every 2 s cost the API server more CPU than the
    operator's writes it was measuring."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.ready: set[str] = set()
        self.all_ready = asyncio.Event()
        self.at = 0.0

    async def follow(self, api: Api, path: str, version: str) -> None:
        while True:  # a watch the API server ends resumes from the last event seen
            async for _, _, event in api.watch(path, version):
                if event["type"] == "ERROR":
                    raise RuntimeError(f"watch {path}: {event['object']}")
                obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                if event["type"] != "DELETED" and is_ready(obj):
                    self.ready.add(obj["metadata"]["name"])
                else:
                    self.ready.discard(obj["metadata"]["name"])
                if len(self.ready) >= self.total and not self.all_ready.is_set():
                    self.at = time.monotonic()
                    self.all_ready.set()


async def create_and_wait(api: Api, kubeconfig: Path, objects: list[dict[str, Any]], ns: str,
                          meter: CpuMeter, out: dict[str, Any]) -> None:  # fmt: skip
    path = f"{GROUP}/namespaces/{ns}/canaryroutes"
    watch = ReadyWatch(sum(1 for o in objects if o["kind"] == "CanaryRoute"))
    async with Api(kubeconfig, connections=1) as watcher:  # its own connection: not one of the creators'
        _, version = await watcher.list(path)
        following = asyncio.create_task(watch.follow(watcher, path, version))
        meter.mark()
        started = time.monotonic()
        await api.create_all(objects)
        out["operator_create_s"] = round(time.monotonic() - started, 1)
        out["cpu_s_during_creates"] = meter.mark()
        await asyncio.wait([following, asyncio.create_task(watch.all_ready.wait())], timeout=1800,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        following.cancel()
        if not watch.all_ready.is_set():
            raise RuntimeError(f"{len(watch.ready)} of {watch.total} routes Ready: {following}")
    out["operator_ready_s"] = round(watch.at - started, 1)
    out["operator_ready_after_last_create_s"] = round(out["operator_ready_s"] - out["operator_create_s"], 1)
    out["cpu_s_after_creates"] = meter.mark()
    items, _ = await api.list(path)  # once, the clock stopped: the watch told the truth
    if sum(1 for item in items if is_ready(item)) < watch.total:
        raise RuntimeError("the watch saw every route Ready, a list does not")


async def versions(api: Api, routes_ns: str, config_ns: str) -> dict[str, str]:
    found = {}
    for kind, path, selector in (
        ("route", f"{GROUP}/namespaces/{routes_ns}/canaryroutes", ""),
        ("upstream", f"{GROUP}/namespaces/{routes_ns}/upstreams", ""),
        ("configmap", f"/api/v1/namespaces/{config_ns}/configmaps", "graylane.io/route-config=true"),
    ):
        items, _ = await api.list(path, selector=selector)
        found |= {f"{kind}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}
    return found


async def restart(api: Api, cmd: list[str], kubeconfig: Path, logs: Path, routes_ns: str, config_ns: str,
                  routes: int, out: dict[str, Any]) -> None:  # fmt: skip
    before = await versions(api, routes_ns, config_ns)
    log = logs / "operator-restarted.log"
    with kubebench.process(cmd, kubeconfig, log) as proc:
        started = time.monotonic()
        await wait_for(lambda: (idle(log) or (0, 0))[0] >= routes, deadline=1800)
        out["restart_idle_s"] = round(time.monotonic() - started, 1)
        out["restart_cpu_s"] = round(cpu_seconds(proc.pid), 1)
        out["restart_peak_mib"] = round(kubebench.peak_rss_mib(proc.pid))
        out["restart_api_writes"] = (idle(log) or (0, -1))[1]
        after = await versions(api, routes_ns, config_ns)
    out["restart_writes"] = sum(1 for k in before if after.get(k) != before[k])


def served(admin: str) -> dict[str, str]:
    try:
        with urllib.request.urlopen(admin + "/routes", timeout=60) as resp:
            return {r["route"]: r["checksum"] for r in json.loads(resp.read())["routes"]}
    except OSError:
        return {}


def all_served(now: dict[str, str], written: dict[str, str]) -> bool:
    """Every written route is served with the checksum it was written with."""
    return all(now.get(key) == checksum for key, checksum in written.items())


async def watch_writes(api: Api, routes_ns: str, config_ns: str, affected: set[str]
                       ) -> tuple[dict[str, str], list[str], list[asyncio.Task[None]]]:  # fmt: skip
    """From now on: the checksum each affected route's ConfigMap is written with, and every write of any
    other route's ConfigMap or object (status included)."""
    written: dict[str, str] = {}
    others: list[str] = []
    cms, routes = f"/api/v1/namespaces/{config_ns}/configmaps", f"{GROUP}/namespaces/{routes_ns}/canaryroutes"
    _, cm_version = await api.list(cms, selector="graylane.io/route-config=true")
    _, route_version = await api.list(routes)

    async def watch_configmaps() -> None:
        async for _, _, event in api.watch(cms, cm_version, selector="graylane.io/route-config=true"):
            annotations = event["object"]["metadata"]["annotations"]
            route = annotations["graylane.io/route"]
            if route in affected:
                written[route] = annotations["graylane.io/checksum"]
            else:
                others.append(f"configmap {route}")

    async def watch_routes() -> None:
        async for _, _, event in api.watch(routes, route_version):
            meta = event["object"]["metadata"]
            if f"{meta['namespace']}/{meta['name']}" not in affected:
                others.append(f"route {meta['name']}")

    return written, others, [asyncio.create_task(watch_configmaps()), asyncio.create_task(watch_routes())]


async def shared_upstream(api: Api, kubeconfig: Path, logs: Path, routes_ns: str, config_ns: str,
                          out: dict[str, Any], *, routes: int, proxy: bool) -> None:  # fmt: skip
    affected = {f"{routes_ns}/svc-{i}" for i in range(min(generate.SHARED_ROUTES, routes))}
    admin_port = free_port()
    proxy_cmd = [str(kubebench.BIN / "graylane-proxy"), "--kube", "--namespace", config_ns, "--listen",
                 f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{admin_port}"]  # fmt: skip
    admin = f"http://127.0.0.1:{admin_port}"
    with contextlib.ExitStack() as stack:
        if proxy:
            stack.enter_context(kubebench.process(proxy_cmd, kubeconfig, logs / "proxy.log"))
            # every route loaded before the change: what is measured is the change, not the proxy's start
            await wait_for(lambda: len(served(admin)) >= routes, deadline=1800, interval=1)
        written, others, watchers = await watch_writes(api, routes_ns, config_ns, affected)
        await asyncio.sleep(1)
        started = time.monotonic()
        status, body = await api.patch(f"{GROUP}/namespaces/{routes_ns}/upstreams/{generate.SHARED}",
                                       {"spec": {"timeoutSeconds": 45}})  # fmt: skip
        if status != 200:
            raise RuntimeError(f"patch Upstream: {status} {body}")
        await wait_for(lambda: len(written) >= len(affected), deadline=900, interval=0.05)
        out["shared_written_s"] = round(time.monotonic() - started, 2)
        if proxy:
            # /routes lists every route (MBs at 10,000): fetched once per poll, once a second (it was fetched
            # once per affected route: 500 fetches a poll, so this row measured the bench's polling)
            await wait_for(lambda: all_served(served(admin), written), deadline=1800, interval=1)
            out["shared_served_s"] = round(time.monotonic() - started, 2)
        await asyncio.sleep(10)
        for task in watchers:
            task.cancel()
        out["shared_configmaps_written"] = len(written)
        out["shared_other_writes"] = len(others)


async def run(kubectl: Any, plane: Any, routes: int, logs: Path, *, proxy: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"routes": routes, "load_before": os.getloadavg()}
    routes_ns = kubebench.namespace(kubectl, "scale")
    config_ns = kubebench.namespace(kubectl, "scale-graylane")
    objects = list(generate.objects(routes, base=routes_ns))
    cmd = kubebench.operator_args(routes_ns, config_ns)
    async with Api(kubectl.kubeconfig) as api:
        log = logs / "operator.log"
        with kubebench.process(cmd, kubectl.kubeconfig, log) as proc:
            await asyncio.sleep(3)  # up and watching before the flood
            measured = {"operator": proc.pid}
            if plane is not None:
                measured |= {name: plane.procs[name].pid for name in plane.procs}
            await create_and_wait(api, kubectl.kubeconfig, objects, routes_ns, CpuMeter(measured), out)
            out["operator_peak_mib"] = round(kubebench.peak_rss_mib(proc.pid))
            out["operator_cpu_s"] = round(cpu_seconds(proc.pid), 1)
            out["load_during"] = os.getloadavg()
            await wait_for(lambda: idle(log) is not None and idle(log)[0] >= routes, deadline=1800)
            await asyncio.sleep(5)
            out["operator_api_writes"] = (idle(log) or (0, -1))[1]
        await restart(api, cmd, kubectl.kubeconfig, logs, routes_ns, config_ns, routes, out)
        log = logs / "operator-shared.log"
        with kubebench.process(cmd, kubectl.kubeconfig, log):
            await wait_for(lambda: (idle(log) or (0, 0))[0] >= routes, deadline=1800)
            writes_before = (idle(log) or (0, 0))[1]
            await shared_upstream(api, kubectl.kubeconfig, logs, routes_ns, config_ns, out, routes=routes,
                                  proxy=proxy)  # fmt: skip
            out["shared_api_writes"] = (idle(log) or (0, 0))[1] - writes_before
    out["load_after"] = os.getloadavg()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="measure on this cluster instead of a fresh local control plane")
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--no-proxy", action="store_true",
                        help="shared Upstream: time the writes only, not a proxy serving them")  # fmt: skip
    args = parser.parse_args()
    logs = Path(os.environ.get("BENCH_LOGS") or kubebench.ROOT / ".graylane" / "bench-scale-operator")
    logs.mkdir(parents=True, exist_ok=True)
    with kubebench.control_plane(args.kubeconfig) as (plane, kubectl):
        out = asyncio.run(run(kubectl, plane, args.routes, logs, proxy=not args.no_proxy))
    (kubebench.ROOT / ".graylane" / "bench-scale-operator.json").write_text(json.dumps(out, indent=1))
    for key, value in out.items():
        bar = f"  (bar {BARS[key]})" if key in BARS else ""
        before = f"  (before: {BEFORE[key]})" if key in BEFORE else ""
        print(f"{key:36} {value}{bar}{before}")
    missed = [k for k, bar in BARS.items() if k in out and out[k] > bar]
    print(f"operator bars: {'met' if not missed else 'MISSED ' + ', '.join(missed)}  (logs in {logs})")
    return 0 if not missed else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
