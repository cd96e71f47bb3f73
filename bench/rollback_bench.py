"""``make bench-rollback``: a canary at 20% under steady load starts failing at t0; when does it get none?

The operator (rollout loop, ``--proxy-metrics-url``), one ``graylane-proxy --kube`` and two upstream processes
run against the test control plane. The route's rollout holds at 20% (``interval: 2s``, ``window: 10s``,
``failureThreshold: 2``, the default ``maxErrorRate: 1`` and ``minRequests: 50``); a load thread sends
requests through the proxy the whole time and records which version answered each. Each round: a healthy
canary passes a check, then at t0 it starts answering 50% errors; measured:

- t0 -> the proxy's ``/routes`` shows weight 0 (polled every 5 ms);
- t0 -> the last answer that came from the canary (observed from responses: its share is 0 after that).

t0 is taken right after a passing check was seen, i.e. about one interval before the next check: the
slow end (failures that start just before a check are caught one interval sooner).

Between rounds the canary is healthy again and the rollout is retried (``abort: true`` then ``false``) once
the failing samples have left the window. Bar (issue 6): every round <= 10 s (Flagger's defaults: minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubebench

sys.path.insert(0, str(kubebench.ROOT / "tests" / "operator"))
from kopfharness import free_port
from rolloutrig import Load, UpstreamProcess, rollout_route, upstreams

BAR_SECONDS = 10.0
ROLLOUT = {
    "steps": [{"weight": 20, "pause": "1h"}, {"weight": 100}],
    "interval": "2s",
    "analysis": {"window": "10s", "failureThreshold": 2},
}


def proxy_weight(admin: str, key: str) -> float | None:
    try:
        with urllib.request.urlopen(admin + "/routes", timeout=2) as resp:
            routes: dict[str, Any] = json.loads(resp.read())
    except OSError:
        return None
    return next((float(r["weight"]) for r in routes.get("routes", []) if r["route"] == key), None)


def route_status(kubectl: Any, ns: str) -> dict[str, Any]:
    return dict(kubectl.json("get", "canaryroute", "checkout", "-n", ns).get("status") or {})


def patch_rollout(kubectl: Any, ns: str, **fields: Any) -> None:
    patch = json.dumps({"spec": {"rollout": fields}})
    kubectl("patch", "canaryroute", "checkout", "-n", ns, "--type=merge", "-p", patch)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="measure on this cluster instead of a fresh local control plane")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="graylane-rollback-"))
    stable, canary = UpstreamProcess("v1", logs / "v1.log"), UpstreamProcess("v2", logs / "v2.log")
    try:
        with kubebench.cluster(args.kubeconfig) as kubectl:
            routes_ns = kubebench.namespace(kubectl, "bench-rollout")
            config_ns = kubebench.namespace(kubectl, "bench-rollout-graylane")
            port, admin_port = free_port(), free_port()
            admin, key = f"http://127.0.0.1:{admin_port}", f"{routes_ns}/checkout"
            proxy = [str(kubebench.BIN / "graylane-proxy"), "--kube", "--namespace", config_ns, "--listen",
                     f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin_port}"]  # fmt: skip
            operator = [
                *kubebench.operator_args(routes_ns, config_ns),
                "--proxy-metrics-url",
                admin + "/metrics",
            ]
            with kubebench.process(operator, kubectl.kubeconfig, logs / "operator.log"), \
                    kubebench.process(proxy, kubectl.kubeconfig, logs / "proxy.log"):  # fmt: skip
                kubectl.apply([*upstreams(routes_ns, stable.port, canary.port)])
                kubectl.apply(rollout_route(routes_ns, ROLLOUT))
                load = Load(port, limit=10_000_000, pause=0.002)
                try:
                    rounds = [
                        measure(kubectl, routes_ns, admin, key, canary, load) for _ in range(args.rounds)
                    ]
                finally:
                    load.stop()
                rate = len(load.answers) / (load.answers[-1][0] - load.answers[0][0])
    finally:
        stable.stop()
        canary.stop()
    return report(rounds, rate, logs)


def measure(
    kubectl: Any, ns: str, admin: str, key: str, canary: UpstreamProcess, load: Load
) -> tuple[float, float]:
    """One round: wait for a passing check at 20%, fail the canary at t0, time the way to weight 0."""
    canary.control(errorRate=0.0)
    if route_status(kubectl, ns).get("phase") == "RolledBack":
        time.sleep(12)  # let the failing samples leave the 10 s window before retrying
        patch_rollout(kubectl, ns, abort=True)
        kubebench.poll(lambda: route_status(kubectl, ns).get("phase") == "Aborted", deadline=60, interval=0.1)
        patch_rollout(kubectl, ns, abort=False)
    kubebench.poll(lambda: proxy_weight(admin, key) == 20, deadline=120, interval=0.05)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    kubebench.poll(
        lambda: (
            (a := route_status(kubectl, ns).get("lastAnalysis") or {}).get("verdict") == "Pass"
            and a.get("at", "") > stamp
        ),
        deadline=120,
        interval=0.1,
    )
    t0 = time.monotonic()
    canary.control(errorRate=0.5)
    kubebench.poll(lambda: proxy_weight(admin, key) == 0, deadline=120, interval=0.005)
    zero = time.monotonic() - t0
    time.sleep(1.0)  # answers still in flight when the weight changed come back
    last_canary = max(at for at, version, _ in list(load.answers) if version == "v2")
    status = route_status(kubectl, ns)
    assert status.get("phase") == "RolledBack", status
    why = str(status.get("message", "")).partition(": ")[2].split(";")[0]  # the first failed limit
    print(f"  round: weight 0 on the proxy after {zero:.2f} s, "
          f"last canary answer {last_canary - t0:.2f} s ({why})")  # fmt: skip
    return zero, last_canary - t0


def report(rounds: list[tuple[float, float]], rate: float, logs: Path) -> int:
    zero = [r[0] for r in rounds]
    last = [r[1] for r in rounds]
    print(f"rollback: {len(rounds)} rounds, steady load {rate:.0f} req/s, canary 20%, interval 2s, "
          f"window 10s, failureThreshold 2  (logs in {logs})")  # fmt: skip
    print(f"  t0 (canary starts failing) -> weight 0 on the proxy: median {statistics.median(zero):.2f} s   "
          f"max {max(zero):.2f} s")  # fmt: skip
    print(f"  t0 -> last answer from the canary:               median {statistics.median(last):.2f} s   "
          f"max {max(last):.2f} s")  # fmt: skip
    ok = max(max(zero), max(last)) <= BAR_SECONDS
    print(f"bar <= {BAR_SECONDS:.0f} s in every round: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
