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


def apiserver(directory: Path, etcd_url: str, port: int, p: Pki) -> list[str]:
    return [
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
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
        "--endpoint-reconciler-type=none",  # 127.0.0.1 is not a valid Endpoints address
    ]


def controller_manager(kubeconfig: Path, p: Pki) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--controllers={','.join(KCM_CONTROLLERS)}",
        "--leader-elect=false",
        "--secure-port=0",
        f"--service-account-private-key-file={p.sa_key}",
        f"--root-ca-file={p.ca_crt}",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
    ]
