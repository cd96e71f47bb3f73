"""Shared set-up for the control-plane benchmarks: a cluster, the CRDs, operator and proxy processes.

The cluster is the local test control plane (``tests/cluster``) started in a temp dir, or any cluster given by
``--kubeconfig`` / ``GRAYLANE_TEST_KUBECONFIG``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))

from benchkit import stop  # noqa: E402
from cluster.kubectl import Kubectl  # noqa: E402
from cluster.launcher import ControlPlane  # noqa: E402
from cluster.tools import ensure_tools  # noqa: E402


@contextlib.contextmanager
def cluster(kubeconfig: str | None) -> Iterator[Kubectl]:
    """A Kubectl for the cluster to measure, with Graylane's and Kopf's CRDs applied."""
    with control_plane(kubeconfig) as (_, kubectl):
        yield kubectl


@contextlib.contextmanager
def control_plane(kubeconfig: str | None) -> Iterator[tuple[ControlPlane | None, Kubectl]]:
    """:func:`cluster`, with the local control plane it started (``None`` for a given cluster), whose
    processes the scale bench measures."""
    kubectl_bin = ensure_tools().kubectl
    external = kubeconfig or os.environ.get("GRAYLANE_TEST_KUBECONFIG")
    with contextlib.ExitStack() as stack:
        plane = None
        if external:
            path = Path(external)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="graylane-bench-")))
            plane = stack.enter_context(ControlPlane(state_dir=tmp))
            path = plane.kubeconfig
        kubectl = Kubectl(kubectl_bin, path, timeout=600)
        crds = ROOT / "deploy" / "crds"
        kubectl(
            "apply", "-f", str(crds), "-f", str(ROOT / "deploy/helm/graylane/crds/kopf.dev_peerings.yaml")
        )
        kubectl("wait", "--for=condition=Established", "crd/canaryroutes.graylane.io",
                "crd/upstreams.graylane.io", "--timeout=60s")  # fmt: skip
        yield plane, kubectl


def namespace(kubectl: Kubectl, name: str) -> str:
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
    kubectl("create", "namespace", name)
    return name


@contextlib.contextmanager
def process(args: list[str], kubeconfig: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=dict(os.environ, KUBECONFIG=str(kubeconfig)), stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            yield proc
        finally:
            stop(proc, timeout=20)


def operator_args(routes_ns: str, config_ns: str) -> list[str]:
    return [str(BIN / "graylane-operator"), "--namespace", routes_ns, "--config-namespace", config_ns]


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def poll(check: Callable[[], Any], *, deadline: float, interval: float) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"not within {deadline}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def dump(obj: Any) -> str:
    return json.dumps(obj)
