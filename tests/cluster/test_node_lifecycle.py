"""The node's life cycle on this machine: recovery after a crash, and a cleanup that leaves nothing.

It restarts the session's cluster twice, so it runs last (marker ``restarts_cluster``).
"""

from __future__ import annotations

import os
import signal

import pytest

from cluster.kubectl import Kubectl
from cluster.launcher import ControlPlane, node_enabled
from cluster.nodeconf import NodePaths
from cluster.nodenet import leftovers
from cluster.pods import wait_pods
from cluster.processes import alive
from cluster.test_node import pod

pytestmark = [
    pytest.mark.node,
    pytest.mark.restarts_cluster,
    pytest.mark.skipif(not node_enabled(), reason="GRAYLANE_NODE=0: control plane only"),
]


def _leftovers(plane: ControlPlane) -> list[str]:
    paths = NodePaths(plane.state_dir / "node")
    return leftovers(paths.root, paths.socket)


def _running_pod(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "namespace", namespace)
    kubectl.apply(pod("web", restart="Always"), "-n", namespace)
    wait_pods(kubectl, namespace, "app=web")


def test_up_after_kill_9_recovers_and_down_leaves_nothing(
    cluster_plane: ControlPlane | None, kubectl: Kubectl
) -> None:
    if cluster_plane is None:
        pytest.skip("an external cluster")
    plane = cluster_plane
    _running_pod(kubectl, "lifecycle-a")
    for proc in plane.procs.values():  # a crash: every process of ours dies at once, pods keep running
        os.kill(proc.pid, signal.SIGKILL)
    for proc in plane.procs.values():
        assert proc.popen is not None
        proc.popen.wait(30)
        assert not alive(proc)
    plane.procs = {}
    assert any(item.startswith("pod process") for item in _leftovers(plane))
    plane.start()  # recovers: the crashed node's pods, mounts, rules are cleaned first
    _running_pod(kubectl, "lifecycle-b")
    plane.stop()
    assert _leftovers(plane) == []
    plane.start()  # the session's cluster is back for anything that runs after
