"""``make bench-operator``: 1,000 CanaryRoutes with 2 Upstreams each, applied at once, until all are Ready.

The operator runs as a real process against the test control plane. The 3,000 objects go in with one
``kubectl create -f`` of a List (Upstreams first); the clock starts when that command starts, so the time
includes the API server's own work. "Ready" means Ready=True for the route's current generation (every
ConfigMap written, every status patched). Prints the total time, the create time, and the operator's peak RSS
(VmHWM) -- plus the idle cost after convergence (a restart that must write nothing).

Bars (issue 4): all Ready <= 120 s, operator peak RSS <= 250 MiB.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kubebench

BAR_SECONDS, BAR_MIB = 120.0, 250.0


def objects(namespace: str, count: int) -> list[dict[str, Any]]:
    upstreams, routes = [], []
    qa = {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Canary", "exact": "1"}]}}
    for i in range(count):
        app = f"svc-{i}"
        for track, port in (("stable", 8080), ("canary", 8081)):
            upstreams.append({
                "apiVersion": "graylane.io/v1alpha1", "kind": "Upstream",
                "metadata": {"name": f"{app}-{track}", "namespace": namespace, "labels": {"app": app}},
                "spec": {"service": {"name": f"{app}-{track}", "port": port}, "metadata": {"version": track}},
            })  # fmt: skip
        spec = {"hosts": [f"{app}.example.com"], "stable": f"{app}-stable", "canary": f"{app}-canary",
                "weight": i % 101, "rules": [qa]}  # fmt: skip
        routes.append({"apiVersion": "graylane.io/v1alpha1", "kind": "CanaryRoute",
                       "metadata": {"name": app, "namespace": namespace}, "spec": spec})  # fmt: skip
    return upstreams + routes


def ready_count(kubectl: Any, namespace: str) -> int:
    items = kubectl.json("get", "canaryroutes", "-n", namespace)["items"]
    count = 0
    for item in items:
        status = item.get("status") or {}
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        count += (
            conds.get("Ready") == "True"
            and status.get("observedGeneration") == item["metadata"]["generation"]
        )
    return count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="measure on this cluster instead of a fresh local control plane")
    parser.add_argument("--routes", type=int, default=1000)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="graylane-operator-bench-"))
    manifest = logs / "objects.json"
    with kubebench.cluster(args.kubeconfig) as kubectl:
        routes_ns = kubebench.namespace(kubectl, "bench-routes")
        config_ns = kubebench.namespace(kubectl, "bench-graylane")
        manifest.write_text(
            json.dumps({"apiVersion": "v1", "kind": "List", "items": objects(routes_ns, args.routes)})
        )
        operator = kubebench.operator_args(routes_ns, config_ns)
        with kubebench.process(operator, kubectl.kubeconfig, logs / "operator.log") as proc:
            time.sleep(3)  # the operator is up and watching before the flood
            started = time.monotonic()
            kubectl("create", "-f", str(manifest), "-o", "name", timeout=900)
            created = time.monotonic() - started
            kubebench.poll(lambda: ready_count(kubectl, routes_ns) >= args.routes, deadline=900, interval=2)
            total = time.monotonic() - started
            rss = kubebench.peak_rss_mib(proc.pid)
        configmaps = len(
            kubectl.json("get", "configmaps", "-n", config_ns, "-l", "graylane.io/route-config=true")["items"]
        )
    print(f"{args.routes} CanaryRoutes x 2 Upstreams ({3 * args.routes} objects), operator log in {logs}")
    print(f"  kubectl create of all objects: {created:6.1f} s")
    print(f"  all routes Ready:              {total:6.1f} s   (bar {BAR_SECONDS:.0f} s)")
    print(f"  route ConfigMaps written:      {configmaps}")
    print(f"  operator peak RSS (VmHWM):     {rss:6.1f} MiB (bar {BAR_MIB:.0f} MiB)")
    ok = total <= BAR_SECONDS and rss <= BAR_MIB and configmaps == args.routes
    print(f"bars: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
