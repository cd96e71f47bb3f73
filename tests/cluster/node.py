"""The test node: containerd, kubelet, kube-proxy, CoreDNS and kube-scheduler next to the control plane.

``start_node(cp)`` runs after the control plane serves (``ControlPlane(node=True)``): it writes the
configs (``nodeconf``) under ``<state_dir>/node/``, starts containerd, imports the locally built images
(``images``; nothing is ever pulled), starts the kubelet (its own client certificate,
``system:node:graylane-node``), kube-proxy (iptables mode), CoreDNS (a host process on the node IP:53,
with a least-privilege identity) and kube-scheduler, and waits until the node is ``Ready``.
"""

from __future__ import annotations

import json
import shutil
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from cluster import build, images, nodeconf, nodenet, pki
from cluster.nodeconf import NET, NodePaths
from cluster.ports import free_port

if TYPE_CHECKING:
    from cluster.launcher import ControlPlane

# containerd's registry client goes through this "proxy": a closed loopback port. Whatever a pod spec
# says (the chart's IfNotPresent), a pull fails at once (ErrImagePull) and nothing leaves the machine.
NO_REGISTRY = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
OWNER = Path("/run/graylane-node")  # the state dir of the one node this machine runs
NODE_ORDER = ("containerd", "kubelet", "kube-proxy", "coredns", "kube-scheduler")
KCM_NODE_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "node-lifecycle-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "pod-garbage-collector-controller",
)


def progress(message: str, started: float) -> None:
    print(f"node: {message} ({time.monotonic() - started:.1f}s)", flush=True)


def _kubeconfig(cp: ControlPlane, p: pki.Pki, stem: str) -> Path:
    cert, key = p.client(stem)
    path = cp.dir / f"{stem}.kubeconfig"
    pki.write_kubeconfig(path, server=cp.server, ca=p.ca_crt, cert=cert, key=key, user=stem)
    return path


def write_configs(cp: ControlPlane, paths: NodePaths, p: pki.Pki) -> dict[str, list[str]]:
    """Write every config file; return each process's argv tail."""
    for directory in (paths.containerd, paths.cni_conf, paths.kubelet, paths.logs / "pods"):
        directory.mkdir(parents=True, exist_ok=True)
    (paths.containerd / "config.toml").write_text(nodeconf.containerd_toml(paths, images.PAUSE.ref))
    (paths.cni_conf / "10-graylane.conflist").write_text(nodeconf.cni_conflist(paths))
    (paths.root / "resolv.conf").write_text(f"nameserver {NET.dns_ip}\n")
    kubelet_yaml = paths.root / "kubelet.yaml"
    kubelet_yaml.write_text(nodeconf.kubelet_config(paths, ca=p.ca_crt, healthz_port=free_port()))
    proxy_yaml = paths.root / "kube-proxy.yaml"
    proxy_yaml.write_text(
        nodeconf.kube_proxy_config(
            _kubeconfig(cp, p, "kube-proxy"), healthz_port=free_port(), metrics_port=free_port()
        )
    )
    corefile = paths.root / "Corefile"
    corefile.write_text(
        nodeconf.corefile(_kubeconfig(cp, p, "coredns"), health_port=free_port(), ready_port=free_port())
    )
    return {
        "containerd": ["--config", str(paths.containerd / "config.toml")],
        "kubelet": [
            f"--config={kubelet_yaml}",
            f"--kubeconfig={_kubeconfig(cp, p, 'kubelet')}",
            f"--root-dir={paths.kubelet}",
            f"--cert-dir={paths.kubelet / 'pki'}",
            f"--node-ip={NET.node_ip}",
            f"--hostname-override={NET.name}",
            "--v=1",
        ],
        "kube-proxy": [f"--config={proxy_yaml}", "--v=1"],
        "coredns": ["-conf", str(corefile)],
        "kube-scheduler": [
            f"--kubeconfig={_kubeconfig(cp, p, 'kube-scheduler')}",
            "--leader-elect=false",
            "--secure-port=0",
        ],
    }


def _post(cp: ControlPlane, p: pki.Pki, path: str, body: dict[str, object]) -> None:
    context = ssl.create_default_context(cafile=str(p.ca_crt))
    context.load_cert_chain(str(p.admin_crt), str(p.admin_key))
    request = urllib.request.Request(
        cp.server + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, context=context, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # already there
            raise


def _coredns_rbac(cp: ControlPlane, p: pki.Pki) -> None:
    role, binding = nodeconf.coredns_rbac(pki.NODE_CLIENTS["coredns"][0])
    _post(cp, p, "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    _post(cp, p, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)


def node_ready(cp: ControlPlane) -> bool:
    node = cp.get(f"/api/v1/nodes/{NET.name}")
    assert isinstance(node, dict)
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def start_node(cp: ControlPlane, p: pki.Pki, binary: Path, deadline: float) -> None:
    """Start the node's processes (the control plane is up) and wait until the node is Ready."""
    started = time.monotonic()
    paths = NodePaths(cp.state_dir / "node")
    args = write_configs(cp, paths, p)
    coredns = build.ensure_coredns(build=False)
    containerd = shutil.which("containerd") or "containerd"
    cp.spawn_exec([containerd, *args["containerd"]], "containerd", cp.dir / "logs", env=NO_REGISTRY)
    cp.wait("containerd", deadline, paths.socket.exists)
    progress("containerd up; importing the node's images", started)
    archives = [images.ensure_archive(spec) for spec in images.NODE_IMAGES]
    refs = images.import_archives(state_dir=cp.state_dir, archives=archives)
    progress(f"imported {', '.join(refs)}", started)
    _coredns_rbac(cp, p)
    cp.spawn_exec([str(binary), "kubelet", *args["kubelet"]], "kubelet", cp.dir / "logs")
    cp.spawn_exec([str(binary), "kube-proxy", *args["kube-proxy"]], "kube-proxy", cp.dir / "logs")
    cp.spawn_exec([str(coredns), *args["coredns"]], "coredns", cp.dir / "logs")
    cp.spawn_exec([str(binary), "kube-scheduler", *args["kube-scheduler"]], "kube-scheduler", cp.dir / "logs")
    progress(f"waiting for node {NET.name} to be Ready", started)
    cp.wait("kubelet", deadline, lambda: node_ready(cp))
    progress(f"node {NET.name} Ready", started)


def cleanup_node(state_dir: Path, saved_sysctls: dict[str, str]) -> None:
    """Remove what the node leaves once its processes are gone (also after a crash); idempotent."""
    paths = NodePaths(Path(state_dir).resolve() / "node")
    inodes = nodenet.kill_pods(paths.socket)
    nodenet.unmount_all(paths.root, inodes)
    nodenet.teardown()
    nodenet.restore_sysctls(saved_sysctls)
    nodenet.remove_host_files(paths.root, paths.socket, _preexisting())
    left = nodenet.mounts_under(paths.root)
    if left:
        raise nodenet.NodeError(f"still mounted after cleanup (unmount by hand): {', '.join(left)}")
    if paths.root.exists():
        shutil.rmtree(paths.root)
    if node_owner() == Path(state_dir).resolve():
        OWNER.unlink(missing_ok=True)


def _owner_record() -> dict[str, object]:
    try:
        record = json.loads(OWNER.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def node_owner() -> Path | None:
    owner = _owner_record().get("state_dir")
    return Path(str(owner)) if owner else None


def _preexisting() -> set[str]:
    found = _owner_record().get("preexisting")
    return {str(x) for x in found} if isinstance(found, list) else set(map(str, nodenet.HOST_DIRS))


def claim_node(state_dir: Path) -> None:
    """Record this state dir as the node's owner, and which host directories existed before it."""
    preexisting = [str(d) for d in nodenet.HOST_DIRS if d.exists()]
    record = {"state_dir": str(Path(state_dir).resolve()), "preexisting": preexisting}
    OWNER.write_text(json.dumps(record) + "\n")
