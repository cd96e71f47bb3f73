"""Where the host cannot run a node, `make cluster-up` says which piece is missing (no cluster needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cluster import hostpkgs, nodenet
from cluster.controlplane import ControlPlane
from cluster.readiness import ControlPlaneError


def test_a_host_without_linux_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cluster.nodenet.sys.platform", "darwin")
    assert nodenet.preflight() == ["not Linux (darwin): the node needs Linux namespaces and cgroups"]


def test_each_missing_piece_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("cluster.nodenet.sys.platform", "linux")
    monkeypatch.setattr("cluster.nodenet.os.geteuid", lambda: 1000)
    monkeypatch.setattr(nodenet, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(
        "cluster.nodenet.shutil.which", lambda name: None if name == "runc" else f"/usr/bin/{name}"
    )
    problems = nodenet.preflight()
    assert problems[0].startswith("not root:")
    assert problems[1].startswith(f"no cgroup file system at {tmp_path}")
    assert problems[2].startswith("missing runc") and "hostpkgs.py install" in problems[2]


def test_start_refuses_with_the_list_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(nodenet, "preflight", lambda: ["not root: the node needs root"])
    plane = ControlPlane(state_dir=tmp_path, binary=Path(sys.executable), node=True)
    with pytest.raises(ControlPlaneError, match=r"cannot run the node .*GRAYLANE_NODE=0.*\n  - not root"):
        plane.start()
    assert plane.procs == {}


def test_the_node_packages_are_one_list() -> None:
    assert set(hostpkgs.PACKAGES) >= {"containerd", "runc", "containernetworking-plugins", "iptables"}
    assert hostpkgs.missing(("graylane-no-such-package",)) == ["graylane-no-such-package"]
