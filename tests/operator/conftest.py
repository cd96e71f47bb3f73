"""Fixtures for the operator suite: CRDs on the real control plane, and the operator as a real process.

``graylane_crds`` (session) applies ``deploy/crds/`` and Kopf's peering CRDs and waits until established.
``operator_ns`` (function) -> ``OperatorNamespaces(routes, config)``: two fresh namespaces, one for the
routes and one for the route ConfigMaps (the install namespace).
``start_operator`` (function) -> ``start_operator(*extra_args, namespaces=...)`` runs ``graylane-operator`` as
a subprocess against the test cluster; every process is killed at teardown and its log kept in tmp_path.
``kube_proxy`` (function): a real ``graylane-proxy --kube`` on the install namespace; ``rig`` (function): the
rollout tests' ``Rig`` (``rolloutrig.py``) around it. Helpers (``eventually``, ``route_configmaps``, ...) live
in ``kopfharness``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster.kubectl import Kubectl
from conformance import suite as gateway_suite
from gatewayrig import gateway_class, template_configmap
from kopfharness import CRDS, PEERING_CRDS, OperatorNamespaces, OperatorProcess, ProxyProcess
from rolloutrig import Rig


@pytest.fixture(scope="session")
def graylane_crds(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(CRDS), "-f", str(PEERING_CRDS))
    names = [
        "canaryroutes.graylane.io",
        "upstreams.graylane.io",
        "trafficpolicies.graylane.io",
        "kopfpeerings.kopf.dev",
    ]
    kubectl("wait", "--for=condition=Established", *[f"crd/{n}" for n in names], "--timeout=60s")


@pytest.fixture(scope="session")
def gateway_api_crds(kubectl: Kubectl) -> None:
    """The Gateway API CRDs (standard channel, pinned release) from local files (``make gateway-api``)."""
    directory = gateway_suite.crds(download=False)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(directory))
    names = [f"{plural}.gateway.networking.k8s.io" for plural in ("gatewayclasses", "gateways", "httproutes",
                                                                  "referencegrants")]  # fmt: skip
    kubectl("wait", "--for=condition=Established", *[f"crd/{n}" for n in names], "--timeout=60s")


@pytest.fixture
def operator_ns(kubectl: Kubectl, graylane_crds: None) -> Iterator[OperatorNamespaces]:
    suffix = uuid.uuid4().hex[:8]
    spaces = OperatorNamespaces(routes=f"shop-{suffix}", config=f"graylane-{suffix}")
    for name in (spaces.routes, spaces.config):
        kubectl("create", "namespace", name)
    yield spaces
    for name in (spaces.routes, spaces.config):
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def start_operator(
    kubeconfig: Path, operator_ns: OperatorNamespaces, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(*extra: str, namespaces: OperatorNamespaces = operator_ns) -> OperatorProcess:
        args = ["--namespace", namespaces.routes, "--config-namespace", namespaces.config]
        args += ["--resync-seconds", "1", "--sweep-seconds", "3", *extra]
        proc = OperatorProcess(args, kubeconfig, tmp_path / f"operator-{len(started)}.log")
        started.append(proc)
        return proc

    yield start
    for i, proc in enumerate(started):
        proc.kill()
        lines = [line for line in proc.log().splitlines() if "succeeded." not in line]
        print(f"--- operator {i} ({' '.join(proc.args)}):", *lines[-60:], sep="\n")  # shown on failure


@pytest.fixture
def kube_proxy(kubeconfig: Path, operator_ns: OperatorNamespaces, tmp_path: Path) -> Iterator[ProxyProcess]:
    """A real ``graylane-proxy --kube`` watching the install namespace of ``operator_ns``."""
    proxy = ProxyProcess(operator_ns.config, kubeconfig, tmp_path / "proxy.log")
    yield proxy
    proxy.stop()
    print("--- proxy:", *proxy.log_path.read_text(errors="replace").splitlines()[-40:], sep="\n")


@pytest.fixture
def rig(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, kube_proxy: ProxyProcess, tmp_path: Path
) -> Iterator[Rig]:
    rig = Rig(kubectl, operator_ns.routes, kube_proxy, tmp_path)
    yield rig
    rig.close()


@pytest.fixture
def kube_tls_proxy(
    kubeconfig: Path, operator_ns: OperatorNamespaces, tmp_path: Path
) -> Iterator[ProxyProcess]:
    """``kube_proxy`` with an HTTPS listener (``--listen-tls``) serving the mirrored certificates."""
    proxy = ProxyProcess(operator_ns.config, kubeconfig, tmp_path / "proxy-tls.log", tls=True)
    yield proxy
    proxy.stop()
    print("--- proxy:", *proxy.log_path.read_text(errors="replace").splitlines()[-40:], sep="\n")


@pytest.fixture
def klass(kubectl: Kubectl, operator_ns: OperatorNamespaces) -> Iterator[str]:
    name = f"graylane-{operator_ns.routes}"
    kubectl.apply(gateway_class(name))
    kubectl.apply(template_configmap(operator_ns.config))
    yield name
    kubectl("delete", "gatewayclass", name, "--ignore-not-found", "--wait=false", check=False)
