"""The pod tier: Graylane as users run it, on the test cluster's real node.

Session fixtures: the images built from ``deploy/docker/`` are imported into the node's containerd (never
pulled); the chart is installed with its default values into namespaces that enforce Pod Security
``restricted``; the demo backends v1 and v2 run as pods behind Services and are the route's ``service:``
upstreams; the README's route is applied with a JWT key made here. Tests reach the proxies through the proxy
Service's ClusterIP from the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster.controlplane import ControlPlane
from cluster.kubectl import Kubectl
from cluster.pods import events, format_events
from cluster.podstack import HOST, PodStack, ensure_node_images, service_upstream
from cluster.stack import route_manifest
from cryptography.hazmat.primitives.asymmetric import ec
from podtest import ROUTE, Signer


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def node_plane(cluster_plane: ControlPlane | None) -> ControlPlane:
    if cluster_plane is None or not cluster_plane.node:
        pytest.fail("the pod tier needs the local cluster with its node (GRAYLANE_NODE=0 was set)")
    return cluster_plane


@pytest.fixture(scope="session")
def pods(
    node_plane: ControlPlane,
    kubectl: Kubectl,
    helm_bin: Path,
    signer: Signer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PodStack]:
    tag = ensure_node_images(node_plane)
    stack = PodStack(kubectl=kubectl, helm=helm_bin, workdir=tmp_path_factory.mktemp("pods"), tag=tag)
    try:
        stack.install()
        stack.deploy_backends("v1", "v2")
        kubectl.apply([service_upstream("v1"), service_upstream("v2")], "-n", stack.apps)
        route = route_manifest(20, host=HOST)
        route["spec"]["jwt"]["publicKeys"] = [signer.public_pem]
        kubectl.apply(route, "-n", stack.apps)
        stack.wait_weight(ROUTE, 20, timeout=120)
        yield stack
    except BaseException:
        for ns in (stack.namespace, stack.apps):
            print(f"--- events in {ns}\n{format_events(events(kubectl, ns))}")
        raise
