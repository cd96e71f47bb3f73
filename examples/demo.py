"""`make demo`: Graylane end to end on a local control plane, in about a minute.

1. starts (or builds, then starts) the local Kubernetes control plane of tests/cluster/;
2. `helm install`s the chart; runs the operator and the proxy as local processes with the chart's
   ServiceAccount tokens (the pods themselves stay Pending: there is no kubelet here);
3. starts two versions of a demo service (v1, v2) on loopback and applies examples/checkout/ with weight 10;
4. drives traffic and prints the live split; `kubectl patch`es the weight to 50 and shows the shift;
5. shows a header override (X-Canary: true -> v2, X-Version: v1 -> v1) and `kubectl get canaryroutes`;
6. cleans everything up.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cluster import build, tools  # noqa: E402
from cluster.kubectl import Kubectl  # noqa: E402
from cluster.launcher import ControlPlane  # noqa: E402
from cluster.stack import LocalStack, http_get, route_manifest, upstream_manifest, wait_until  # noqa: E402

NS = "demo"
HOST = "checkout.example.com"
LIVE = sys.stdout.isatty()  # redraw the split table in place on a terminal; one line per phase otherwise
BOLD, DIM, GREEN, BLUE, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[34m", "\033[0m") if LIVE else ("",) * 5
)


def say(text: str) -> None:
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


def bar(share: float, width: int = 40) -> str:
    fill = round(share * width)
    return f"{BLUE}{'█' * fill}{RESET}{DIM}{'░' * (width - fill)}{RESET}"


def drive(port: int, n: int, *, headers: dict[str, str] | None = None, label: str = "") -> dict[str, str]:
    """Send n requests as n different users (the same users every call); print the split as they come back.

    Returns which version each user got."""
    seen: Counter[str] = Counter()
    got: dict[str, str] = {}
    rng = random.Random(7)
    for i in range(1, n + 1):
        user = f"user-{rng.randrange(10**9)}"
        status, body = http_get(
            f"http://127.0.0.1:{port}/", {"Host": HOST, "X-User-Id": user} | (headers or {})
        )
        got[user] = body.decode().strip() if status == 200 else f"HTTP {status}"
        seen[got[user]] += 1
        if (LIVE and i % 20 == 0) or i == n:
            share = seen["v2"] / i
            counts = f"v1 {seen['v1']:>4}  v2 {seen['v2']:>4}"
            line = f"  {label:<24} {i:>4}/{n}  {counts}  {bar(share)} {share:6.1%}"
            print(f"\r{line}", end="" if LIVE else "\n", flush=True)
    if LIVE:
        print()
    return got


def served_weight(admin: int) -> float | None:
    status, body = http_get(f"http://127.0.0.1:{admin}/routes")
    routes = json.loads(body)["routes"] if status == 200 else []
    return next((r["weight"] for r in routes if r["route"] == f"{NS}/checkout"), None)


def run(kubectl: Kubectl, helm: Path, work: Path) -> None:
    stack = LocalStack(kubectl=kubectl, helm=helm, workdir=work, watch=(NS,))
    try:
        say("helm install graylane deploy/helm/graylane (CRDs, RBAC, ServiceAccounts, Deployments)")
        stack.install_chart()
        say("Operator and proxy as local processes, authenticated with the chart's ServiceAccount tokens")
        v1, v2 = stack.start_upstream("v1"), stack.start_upstream("v2")
        stack.start_operator()
        port, admin = stack.start_proxy()
        print(f"  proxy on 127.0.0.1:{port} (admin {admin}); demo versions v1 :{v1}, v2 :{v2}")
        say(f"kubectl apply -n {NS}: Upstreams checkout-v1, checkout-v2 and CanaryRoute checkout (weight 10)")
        versions = [upstream_manifest("checkout-v1", v1, "v1"), upstream_manifest("checkout-v2", v2, "v2")]
        kubectl.apply(versions, "-n", NS)
        kubectl.apply(route_manifest(10, host=HOST), "-n", NS)
        wait_until("the proxy to serve the route", lambda: served_weight(admin) == 10, timeout=90)
        print(kubectl("get", "canaryroutes", "-n", NS).stdout)
        say("Traffic at weight 10 (each request is a different user; the split is sticky per user)")
        before = drive(port, 400, label="weight 10")
        say(f'kubectl patch canaryroute checkout -n {NS} --type merge -p \'{{"spec":{{"weight":50}}}}\'')
        started = time.monotonic()
        kubectl.set_weight("checkout", NS, 50)
        wait_until("weight 50 on the proxy", lambda: served_weight(admin) == 50, timeout=30, every=0.02)
        print(f"  {GREEN}the proxy serves weight 50 after {time.monotonic() - started:.2f} s{RESET}")
        after = drive(port, 400, label="weight 50")
        kept = sum(after[user] == "v2" for user, version in before.items() if version == "v2")
        moved = sum(after[user] == "v2" for user, version in before.items() if version == "v1")
        canary_before = sum(v == "v2" for v in before.values())
        back = "nobody moved back" if kept == canary_before else f"{canary_before - kept} MOVED BACK"
        print(
            f"  sticky and monotone: {kept} of {canary_before} canary users at weight 10 are still on v2; "
            f"{moved} stable users moved to v2; {back}"
        )
        say("Overrides beat the split: X-Canary: true -> canary, X-Version: v1 -> the v1 Upstream")
        drive(port, 100, headers={"X-Canary": "true"}, label="X-Canary: true")
        drive(port, 100, headers={"X-Version": "v1"}, label="X-Version: v1")
        _, body = http_get(f"http://127.0.0.1:{admin}/explain?host={HOST}&path=/&header=X-Canary:true")
        why = {k: v for k, v in json.loads(body).items() if k in ("route", "track", "upstream", "reason")}
        print(f"  GET /explain?host={HOST}&header=X-Canary:true -> {json.dumps(why)}")
        print(kubectl("get", "canaryroutes", "-n", NS).stdout)
        say("Cleaning up: delete the route, stop the processes, helm uninstall")
        kubectl("delete", "canaryroute", "checkout", "-n", NS)
    finally:
        stack.stop()
        stack.uninstall_chart()


def main() -> int:
    binary = build.ensure_binary()
    kubectl_bin, helm = tools.ensure_tools().kubectl, tools.ensure_tools().helm
    with tempfile.TemporaryDirectory(prefix="graylane-demo-") as tmp:
        work = Path(tmp)
        say("Starting a local Kubernetes v1.35 control plane (etcd, kube-apiserver, kube-controller-manager)")
        started = time.monotonic()
        with ControlPlane(state_dir=work / "cluster", binary=binary) as plane:
            print(f"  ready in {time.monotonic() - started:.1f} s at {plane.server}")
            run(Kubectl(kubectl_bin, plane.kubeconfig), helm, work)
    say("Done. Next: `make test` runs the whole suite; README.md explains every field.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
