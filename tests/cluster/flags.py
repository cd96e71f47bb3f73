"""Command-line flags of the three control-plane processes (pure functions of paths and ports)."""

from __future__ import annotations

from pathlib import Path

from cluster.pki import Pki

KCM_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)


def etcd(directory: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        "--name=graylane",
        f"--data-dir={directory / 'etcd'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=graylane={peer_url}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver(directory: Path, etcd_url: str, port: int, p: Pki, node_ip: str | None = None) -> list[str]:
    """``node_ip``: with a node, listen on and advertise it (pods reach the `kubernetes` Service)."""
    address = node_ip or "127.0.0.1"
    return [
        f"--etcd-servers={etcd_url}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        f"--cert-dir={directory / 'pki'}",
        f"--tls-cert-file={p.serving_crt}",
        f"--tls-private-key-file={p.serving_key}",
        f"--client-ca-file={p.ca_crt}",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p.sa_pub}",
        f"--service-account-signing-key-file={p.sa_key}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        *(_node_apiserver(p) if node_ip else ["--endpoint-reconciler-type=none"]),  # 127.0.0.1: no Endpoints
    ]


# The API server's Go garbage collector: with the default GOGC=100 it marked the whole heap (1.4 GiB in use
# with the 39,501 objects of `make bench-scale-operator`) 84 times during that bench. Letting the heap grow
# 4x between collections, up to a soft limit of 3 GiB, took its CPU for the bench's create + all Ready from
# 280 to 195 s (docs/performance.md). A property of this test cluster on a shared 2-core machine, not of
# Graylane: a production API server has its own sizing.
APISERVER_ENV = {"GOGC": "400", "GOMEMLIMIT": "3GiB"}


def _node_apiserver(p: Pki) -> list[str]:
    cert, key = p.client("apiserver-kubelet-client")
    return [
        "--endpoint-reconciler-type=lease",
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={cert}",
        f"--kubelet-client-key={key}",
    ]


def controller_manager(kubeconfig: Path, p: Pki, extra_controllers: tuple[str, ...] = ()) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--controllers={','.join(KCM_CONTROLLERS + extra_controllers)}",
        "--leader-elect=false",
        "--secure-port=0",
        f"--service-account-private-key-file={p.sa_key}",
        f"--root-ca-file={p.ca_crt}",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
    ]
