"""The official Gateway API suite (v1.6.3, profile GATEWAY-HTTP: every core test and the extended tests of the
features the GatewayClass declares) on the session's node, as ``make conformance`` runs it -- what CI runs of
the suite (``make test``).

The suite binary and its backends come from ``make gateway-suite`` (a prerequisite of ``make test``); the
images are ``make images``'. The chart goes into its own namespace and release, uninstalled afterwards
with everything the suite and the Gateways left, so the tiers after this one find the node as before.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cluster.controlplane import ControlPlane
from cluster.kubectl import Kubectl

from conformance import report, run
from graylane.gateway import features

NAMESPACE, RELEASE = "graylane-conformance", "gwconf"


@pytest.fixture
def node_plane(cluster_plane: ControlPlane | None) -> ControlPlane:
    if cluster_plane is None or not cluster_plane.node:
        pytest.fail("the conformance suite needs the local cluster with its node (GRAYLANE_NODE=0 was set)")
    return cluster_plane


@pytest.mark.timeout(900)  # about 100 s on a quiet 2-core machine; the suite's own timeouts are minutes
def test_the_gateway_http_profile_passes_core_and_declared_extended(
    node_plane: ControlPlane, kubectl: Kubectl, helm_bin: Path
) -> None:
    state = Path(node_plane.state_dir)
    try:
        code = run.main(["--state-dir", str(state), "--namespace", NAMESPACE, "--release", RELEASE])
    finally:  # the session's cluster: nothing of this run stays on it
        _uninstall(kubectl, helm_bin)
    found = report.load(state / "conformance-report.yaml")
    summary = "\n".join(report.summary(found))
    assert code == 0 and report.passed(found, run.PROFILE), summary
    (profile,) = [p for p in found["profiles"] if p["name"] == run.PROFILE]
    assert profile["core"]["statistics"] == {"Passed": 36, "Skipped": 0, "Failed": 0}, summary
    extended = profile["extended"]
    assert sorted(extended["supportedFeatures"]) == sorted(features.EXTENDED), summary
    assert extended["statistics"]["Failed"] == 0 and extended["statistics"]["Passed"] >= 25, summary


def _uninstall(kubectl: Kubectl, helm: Path) -> None:
    subprocess.run([str(helm), "--kubeconfig", str(kubectl.kubeconfig), "uninstall", RELEASE, "--namespace",
                    NAMESPACE, "--wait", "--timeout", "2m"], check=False, timeout=180)  # fmt: skip
    kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", "--ignore-not-found",
            check=False)  # fmt: skip
