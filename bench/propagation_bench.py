"""``make bench-propagation``: kubectl patch of a weight -> a kube-mode proxy serving it.

The operator and one ``graylane-proxy --kube`` run against the test control plane; 20 ``kubectl patch``es
of ``spec.weight``; for each, the time until the proxy's ``/routes`` shows the new weight (polled every
5 ms). Two clocks: from starting ``kubectl patch`` (what a user waits, including kubectl's own start-up) and
from the moment kubectl returned (the API server accepted the patch). For context: a *mounted* ConfigMap
volume would see the change only at the kubelet's next sync -- ``--sync-frequency`` default 1 min plus the
ConfigMap cache TTL, i.e. typically 60-90 s (documented, not measured: there is no kubelet here).

Bar (issue 4): p99 <= 1 s from starting kubectl patch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubebench
from cluster.ports import free_port

BAR_SECONDS = 1.0


def proxy_weight(admin: str, key: str) -> float | None:
    try:
        with urllib.request.urlopen(admin + "/routes", timeout=2) as resp:
            routes: dict[str, Any] = json.loads(resp.read())
    except OSError:
        return None
    for entry in routes.get("routes", []):
        if entry["route"] == key:
            return float(entry["weight"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="measure on this cluster instead of a fresh local control plane")
    parser.add_argument("--patches", type=int, default=20)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="graylane-propagation-"))
    with kubebench.cluster(args.kubeconfig) as kubectl:
        routes_ns = kubebench.namespace(kubectl, "bench-shop")
        config_ns = kubebench.namespace(kubectl, "bench-graylane")
        admin_port = free_port()
        proxy = [str(kubebench.BIN / "graylane-proxy"), "--kube", "--namespace", config_ns, "--listen",
                 f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{admin_port}"]  # fmt: skip
        operator = kubebench.operator_args(routes_ns, config_ns)
        with kubebench.process(operator, kubectl.kubeconfig, logs / "operator.log"), \
                kubebench.process(proxy, kubectl.kubeconfig, logs / "proxy.log"):  # fmt: skip
            admin, key = f"http://127.0.0.1:{admin_port}", f"{routes_ns}/checkout"
            kubectl("apply", "-n", routes_ns, "-f", str(kubebench.ROOT / "examples" / "checkout"))
            kubebench.poll(lambda: proxy_weight(admin, key) == 5, deadline=120, interval=0.1)
            from_start, from_accept = measure(kubectl, routes_ns, admin, key, args.patches)
    return report(from_start, from_accept, logs)


def measure(kubectl: Any, ns: str, admin: str, key: str, patches: int) -> tuple[list[float], list[float]]:
    from_start, from_accept = [], []
    for i in range(patches):
        weight = 10 + i
        started = time.monotonic()
        kubectl.set_weight("checkout", ns, weight)
        accepted = time.monotonic()
        kubebench.poll(lambda weight=weight: proxy_weight(admin, key) == weight, deadline=30, interval=0.005)
        done = time.monotonic()
        from_start.append(done - started)
        from_accept.append(done - accepted)
    return from_start, from_accept


def report(from_start: list[float], from_accept: list[float], logs: Path) -> int:
    p = kubebench.percentile
    print(f"weight patches: {len(from_start)}  (logs in {logs})")
    print(f"  kubectl patch started -> proxy serves it: p50 {p(from_start, 50) * 1000:7.1f} ms   "
          f"p99 {p(from_start, 99) * 1000:7.1f} ms   max {max(from_start) * 1000:7.1f} ms")  # fmt: skip
    print(f"  API accepted patch    -> proxy serves it: p50 {p(from_accept, 50) * 1000:7.1f} ms   "
          f"p99 {p(from_accept, 99) * 1000:7.1f} ms")  # fmt: skip
    print("  for context, a mounted ConfigMap volume: next kubelet sync (--sync-frequency 60 s) + cache TTL,")
    print("  typically 60-90 s (documented, not measured)")
    ok = p(from_start, 99) <= BAR_SECONDS
    print(f"bar p99 <= {BAR_SECONDS:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
