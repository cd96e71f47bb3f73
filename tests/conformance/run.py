# ruff: noqa: E501  (command lines and values read better on one line)
"""``make conformance``: the official Gateway API suite (v1.6.3, GATEWAY-HTTP) against Graylane on the node.

Needs the node of ``make cluster-up`` (``--state-dir``, default ``.graylane``). Steps, each timed:

1. build (or reuse): the suite binary and its backends (echo-basic; the base manifests' CoreDNS) from the Go
   modules in this directory, Graylane's images (``make images``); import them all into the node (nothing is
   pulled);
2. install the pinned standard-channel CRDs (from the module cache) and the chart with
   ``gatewayAPI.enabled=true`` (small CPU requests: every Gateway gets a proxy pod on a 2-core node);
3. run the suite (``--gateway-class graylane``; the supported features are read from the GatewayClass
   status, as the suite does by default), writing its report to ``<state-dir>/conformance-report.yaml``
   and its log to ``<state-dir>/conformance.log``;
4. print the profile summary. Exit 0 only when the core profile passed and no declared extended test failed.

Extra suite flags go after ``--`` (``make conformance ARGS='--run-test=HTTPRouteWeight'``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import images as node_images
from cluster.kubectl import Kubectl
from cluster.pods import wait_pods
from cluster.podstack import build_images, restricted_namespace
from cluster.stack import CHART, REPO
from cluster.tools import ensure_tools

from conformance import report, suite

PROFILE = "GATEWAY-HTTP"
NAMESPACE = "graylane-system"
RELEASE = "graylane"
VALUES = {
    "gatewayAPI": {"enabled": True, "gatewayClassName": "graylane"},
    "operator": {"replicas": 1, "resources": {"requests": {"cpu": "20m", "memory": "96Mi"}}},
    "proxy": {"replicas": 1, "drainDelaySeconds": 1, "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}}},
}  # fmt: skip


def step(what: str, started: float) -> None:
    print(f"conformance: {what} ({time.monotonic() - started:.0f}s)", flush=True)


def prepare(kubectl: Kubectl, helm: Path, state: Path, started: float, *, namespace: str = NAMESPACE,
            release: str = RELEASE) -> str:  # fmt: skip
    """Images in the node, CRDs and the chart (``release`` in ``namespace``) installed; returns Graylane's
    version."""
    runner, backends = suite.ensure_suite(), suite.backend_archives()
    tag, archives = build_images()
    step(f"built the suite ({runner.name}), its backends and Graylane {tag}", started)
    node_images.import_archives(state_dir=state, archives=[*backends, *archives.values()])
    step("images imported into the node", started)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(suite.crds(download=False)))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            *[f"crd/{p}.gateway.networking.k8s.io" for p in ("gatewayclasses", "gateways", "httproutes", "referencegrants")])  # fmt: skip
    restricted_namespace(kubectl, namespace)
    values = state / "conformance-values.json"
    values.write_text(json.dumps(VALUES))
    subprocess.run([str(helm), "--kubeconfig", str(kubectl.kubeconfig), "upgrade", "--install", release, str(CHART),
                    "--namespace", namespace, "--values", str(values), "--wait", "--timeout", "5m"],
                   check=True, timeout=400)  # fmt: skip
    wait_pods(
        kubectl, namespace, f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    )
    # the suite reads the supported features off the GatewayClass once, at start: wait until the operator
    # has accepted it (conditions and supportedFeatures are written in one status update)
    kubectl("wait", "--for=condition=Accepted", "--timeout=120s", "gatewayclass/graylane")
    step("CRDs and chart installed, operator Ready, GatewayClass accepted", started)
    return tag


def run_suite(kubectl: Kubectl, state: Path, version: str, extra: list[str]) -> int:
    binary = suite.ensure_suite(build=False)
    args = [
        str(binary), "-test.v", "-test.timeout=120m", "-test.run=TestConformance",
        "--gateway-class=graylane", f"--conformance-profiles={PROFILE}",
        f"--report-output={state / 'conformance-report.yaml'}", "--organization=graylane", "--project=graylane",
        "--url=https://github.com/graylane/graylane", f"--version={version}", "--contact=graylane maintainers",
        "--cleanup-base-resources=true", *extra,
    ]  # fmt: skip
    env = dict(os.environ, KUBECONFIG=str(kubectl.kubeconfig))
    with (state / "conformance.log").open("w") as log:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=suite.MODULE_DIR)  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if (
                line.startswith(("=== RUN", "--- FAIL", "--- PASS", "--- SKIP", "FAIL", "PASS", "ok"))
                and "/" not in line[:40]
            ):
                print(line.rstrip(), flush=True)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--state-dir", type=Path, default=REPO / ".graylane")
    p.add_argument("--namespace", default=NAMESPACE, help="where the chart is installed")
    p.add_argument("--release", default=RELEASE, help="the chart's release name")
    p.add_argument("suite_args", nargs="*", help="extra flags for the suite (after --)")
    args = p.parse_args(argv)
    state = args.state_dir.resolve()
    kubeconfig = state / "kubeconfig"
    if not kubeconfig.is_file() or not node_images.containerd_socket(state).exists():
        print(f"conformance: no node at {state}: start it with `make cluster-up` first", file=sys.stderr)
        return 2
    tools = ensure_tools()
    kubectl = Kubectl(tools.kubectl, kubeconfig)
    started = time.monotonic()
    version = prepare(kubectl, tools.helm, state, started, namespace=args.namespace, release=args.release)
    code = run_suite(kubectl, state, version, args.suite_args)
    step(f"suite exited {code}", started)
    out = state / "conformance-report.yaml"
    if not out.is_file():
        print(f"conformance: the suite wrote no report (see {state / 'conformance.log'})", file=sys.stderr)
        return 1
    found = report.load(out)
    print("\n".join(report.summary(found)))
    print(
        f"conformance: report {out}, log {state / 'conformance.log'}, total {time.monotonic() - started:.0f}s"
    )
    return 0 if report.passed(found, PROFILE) else 1


if __name__ == "__main__":
    sys.exit(main())
