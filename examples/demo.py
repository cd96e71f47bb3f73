"""`make demo`: Graylane as users run it -- pods on a local Kubernetes node -- steered with kubectl.

1. builds (or reuses) the test cluster's binaries and, alongside, the images of deploy/docker/ (nothing is
   pulled);
2. starts the local cluster with its real node (kubelet, containerd, kube-proxy, CoreDNS) and imports the
   images into the node;
3. `helm install`s the chart with its default values into a namespace enforcing Pod Security `restricted`:
   two operator pods (one active through Kopf peering) and two proxy pods;
4. runs two versions of a demo service (v1, v2) as pods behind Services and applies Upstreams that name
   those Services and the README's CanaryRoute with weight 10;
5. drives traffic to the proxy Service's ClusterIP and prints the live split; `kubectl patch`es the weight
   to 50 and shows the shift (and how long until every proxy pod served it);
6. shows the overrides (X-Canary: true -> v2, X-Version: v1 -> v1) and `/explain`, then cleans up.

`python examples/demo.py --processes` (`make demo-processes`) runs the operator and the proxy as local
processes next to a control plane without a node instead, as before the node existed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "examples"))

from cluster import build, tools  # noqa: E402
from cluster.controlplane import ControlPlane  # noqa: E402
from cluster.kubectl import Kubectl  # noqa: E402
from cluster.podstack import build_images  # noqa: E402
from demo_setups import NS, run_as_processes, run_on_pods  # noqa: E402
from demo_story import GREEN, RESET, Phase, Target, drive, say  # noqa: E402


def story(kubectl: Kubectl, target: Target) -> None:
    """What a user should see: the split, a patch moving it, overrides beating it."""
    print(kubectl("get", "canaryroutes", "-n", NS).stdout)
    say(
        f"Traffic to {target.base} at weight 10 (each request a different user; the split is sticky per user)"
    )
    before = drive(target.base, 400, label="weight 10")
    say(f'kubectl patch canaryroute checkout -n {NS} --type merge -p \'{{"spec":{{"weight":50}}}}\'')
    started = time.monotonic()
    kubectl.set_weight("checkout", NS, 50)
    target.wait_weight(50)
    print(f"  {GREEN}every proxy serves weight 50 {time.monotonic() - started:.2f} s after the patch{RESET}")
    after = drive(target.base, 400, label="weight 50")
    kept = sum(after[user] == "v2" for user, version in before.items() if version == "v2")
    moved = sum(after[user] == "v2" for user, version in before.items() if version == "v1")
    canary_before = sum(v == "v2" for v in before.values())
    back = "nobody moved back" if kept == canary_before else f"{canary_before - kept} MOVED BACK"
    print(
        f"  sticky and monotone: {kept} of {canary_before} canary users at weight 10 are still on v2; "
        f"{moved} stable users moved to v2; {back}"
    )
    say("Overrides beat the split: X-Canary: true -> canary, X-Version: v1 -> the v1 Upstream")
    drive(target.base, 100, headers={"X-Canary": "true"}, label="X-Canary: true")
    drive(target.base, 100, headers={"X-Version": "v1"}, label="X-Version: v1")
    why = {k: v for k, v in target.explain().items() if k in ("route", "track", "upstream", "reason")}
    print(f"  GET /explain?host=checkout.example.com&header=X-Canary:true -> {json.dumps(why)}")
    print(kubectl("get", "canaryroutes", "-n", NS).stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", action="store_true", help="operator and proxy as local processes")
    args = parser.parse_args(argv)
    on_pods = not args.processes and os.environ.get("GRAYLANE_NODE", "1") != "0"
    what = "; alongside, the images of deploy/docker/ (buildah)" if on_pods else ""
    with (
        Phase(
            f"Building or reusing the cluster binaries (Kubernetes v1.35 from its Go modules, CoreDNS){what}"
        ),
        ThreadPoolExecutor(max_workers=1) as alongside,
    ):
        images = alongside.submit(build_images) if on_pods else None  # mostly I/O while Go compiles
        binary = build.ensure_binary()
        if on_pods:
            build.ensure_coredns()
            build.ensure_imageprogs()
        kubectl_bin, helm = tools.ensure_tools().kubectl, tools.ensure_tools().helm
        if images is not None:
            images.result()
    runner: Callable[[ControlPlane, Kubectl, Path, Path, Callable[[Kubectl, Target], None]], None]
    runner = run_on_pods if on_pods else run_as_processes
    with tempfile.TemporaryDirectory(prefix="graylane-demo-") as tmp:
        work = Path(tmp)
        what = "with one node (kubelet, containerd, kube-proxy, CoreDNS)" if on_pods else "(no node)"
        with Phase(f"Starting a local Kubernetes v1.35 cluster {what}"):
            plane = ControlPlane(state_dir=work / "cluster", binary=binary, node=on_pods).start()
        try:
            runner(plane, Kubectl(kubectl_bin, plane.kubeconfig), helm, work, story)
        finally:
            with Phase("Stopping the cluster (processes, pods, network: nothing is left behind)"):
                plane.stop()
    say("Done. Next: `make test` runs the whole suite; README.md explains every field.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
