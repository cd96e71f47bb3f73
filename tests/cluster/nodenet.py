"""The host side of the test node: preflight, network setup, and the cleanup that leaves nothing behind.

Setup: the node IP as a /32 on ``lo``; the pod bridge (with the gateway address, IPv4 forwarding for
packets that enter from the bridge only, and a filter chain that drops anything forwarded from or to
the bridge via another interface); the service CIDR routed to the bridge, so a ClusterIP without
endpoints never reaches the host's default route.

Cleanup (``make cluster-down``, and ``make cluster-up`` after a crash): pod processes (the ``kubepods``
cgroups) and our containerd shims are killed, the cgroups removed, every mount under the node
directory and our pods' network namespaces unmounted, the bridge, the ``lo`` address, the iptables
chains of kube-proxy, the kubelet and ours deleted, and the sysctls the kubelet wrote restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from cluster.nodeconf import NET, NodeNet

CGROUP_ROOT = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")
CHAIN = "GRAYLANE-FORWARD"
CHAIN_PREFIXES = ("KUBE-", "GRAYLANE-")
TABLES = ("filter", "nat", "mangle")
KUBELET_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
BINARIES = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip", "mount", "umount")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
# Host directories the kubelet, libcni and containerd's shims write to whatever their configuration.
HOST_DIRS = tuple(map(Path, ("/var/lib/kubelet", "/var/log/containers", "/var/lib/cni", "/run/containerd")))


class NodeError(RuntimeError):
    """The host cannot run the node, or the node did not start."""


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(cmd)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result


def preflight() -> list[str]:
    """What this host lacks to run the node (empty when it can)."""
    if sys.platform != "linux":
        return [f"not Linux ({sys.platform}): the node needs Linux namespaces and cgroups"]
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: the node needs root (containerd, mounts, network namespaces, iptables)")
    if not (CGROUP_ROOT / "memory").is_dir() and not (CGROUP_ROOT / "cgroup.controllers").is_file():
        problems.append(f"no cgroup file system at {CGROUP_ROOT} (needs the memory controller, v1 or v2)")
    missing = [b for b in BINARIES if not shutil.which(b)]
    missing += [f"/usr/lib/cni/{p}" for p in CNI_PLUGINS if not Path("/usr/lib/cni", p).is_file()]
    if missing:
        problems.append(f"missing {', '.join(missing)}: run `python3 tests/cluster/hostpkgs.py install`")
    return problems


def setup(net: NodeNet = NET) -> None:
    run("ip", "addr", "replace", f"{net.node_ip}/32", "dev", "lo")
    if run("ip", "link", "show", net.bridge, check=False).returncode != 0:
        run("ip", "link", "add", net.bridge, "type", "bridge")
    prefix = net.pod_cidr.split("/")[1]
    run("ip", "addr", "replace", f"{net.gateway}/{prefix}", "dev", net.bridge)
    run("ip", "link", "set", net.bridge, "up")
    Path(f"/proc/sys/net/ipv4/conf/{net.bridge}/forwarding").write_text("1\n")
    run("ip", "route", "replace", net.service_cidr, "dev", net.bridge)
    _forward_rules(net)


def _forward_rules(net: NodeNet) -> None:
    if run("iptables", "-t", "filter", "-n", "-L", CHAIN, check=False).returncode != 0:
        run("iptables", "-t", "filter", "-N", CHAIN)
    run("iptables", "-t", "filter", "-F", CHAIN)
    comment = ["-m", "comment", "--comment", "graylane: pod traffic stays on the bridge"]
    run("iptables", "-A", CHAIN, "-i", net.bridge, "-o", net.bridge, "-j", "ACCEPT", *comment)
    run("iptables", "-A", CHAIN, "-i", net.bridge, "-j", "DROP", *comment)
    run("iptables", "-A", CHAIN, "-o", net.bridge, "-j", "DROP", *comment)
    jump = ["FORWARD", "-j", CHAIN, *comment]
    if run("iptables", "-C", *jump, check=False).returncode != 0:
        run("iptables", "-I", *jump)


def read_sysctls() -> dict[str, str]:
    return {name: Path("/proc/sys", name).read_text().strip() for name in KUBELET_SYSCTLS}


def restore_sysctls(saved: dict[str, str]) -> None:
    for name, value in saved.items():
        with contextlib.suppress(OSError):
            Path("/proc/sys", name).write_text(value + "\n")


# -- cleanup ---------------------------------------------------------------------------------------
def _kubepods_dirs() -> list[Path]:
    """Every kubepods cgroup directory, deepest first, over all hierarchies. The kubelet may be removing
    some while we walk (a pod that just ended): a directory gone mid-walk is skipped, not an error."""
    found: list[Path] = []
    for top in CGROUP_ROOT.glob("*/kubepods"):
        found += [Path(d) for d, _, _ in os.walk(top, onerror=lambda _: None)]
    return sorted(set(found), key=lambda p: -len(p.parts))


def pod_pids() -> set[int]:
    pids: set[int] = set()
    for directory in _kubepods_dirs():
        with contextlib.suppress(OSError):
            pids |= {int(x) for x in (directory / "cgroup.procs").read_text().split()}
    return pids


def _shim_pids(socket: Path) -> set[int]:
    pids = set()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"containerd-shim" in argv[0] and str(socket).encode() in argv:
                pids.add(int(proc.name))
    return pids


def _netns_inodes(pids: set[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
    return inodes


def _our_netns(inodes: set[int], net: NodeNet) -> list[Path]:
    """Network namespaces our pods used: by inode, or (after a crash) by an address in the pod CIDR."""
    ours = []
    prefix = net.pod_cidr.rsplit(".", 1)[0] + "."
    for path in sorted(NETNS_DIR.glob("cni-*")):
        with contextlib.suppress(OSError):
            if path.stat().st_ino in inodes:
                ours.append(path)
                continue
        addrs = run("ip", "-n", path.name, "-4", "-o", "addr", "show", check=False).stdout
        if f"inet {prefix}" in addrs:
            ours.append(path)
    return ours


def kill_pods(socket: Path) -> set[int]:
    """SIGKILL every pod process and our shims; return the netns inodes the pods used."""
    pids = pod_pids()
    inodes = _netns_inodes(pids)
    for pid in pids | _shim_pids(socket):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pod_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    for directory in _kubepods_dirs():
        with contextlib.suppress(OSError):
            directory.rmdir()
    return inodes


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(str(root) + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: -p.count("/"))


def unmount_all(node_dir: Path, inodes: set[int], net: NodeNet = NET) -> None:
    for netns in _our_netns(inodes, net):
        run("umount", "-l", str(netns), check=False)
        netns.unlink(missing_ok=True)
    for point in mounts_under(node_dir):
        run("umount", "-l", point, check=False)


def delete_chains(binary: str = "iptables") -> None:
    """Remove every rule that jumps to a KUBE-/GRAYLANE- chain, then those chains, in every table."""
    for table in TABLES:
        dump = run(f"{binary}-save", "-t", table, check=False).stdout.splitlines()
        for line in dump:
            if line.startswith("-A ") and any(f"-j {p}" in line or f"-g {p}" in line for p in CHAIN_PREFIXES):
                chain = line.split()[1]
                if not chain.startswith(CHAIN_PREFIXES):
                    run("sh", "-c", f"{binary} -t {table} -D {line[3:]}", check=False)
        chains = [line[1:].split()[0] for line in dump if line.startswith(":")]
        for chain in (c for c in chains if c.startswith(CHAIN_PREFIXES)):
            run(binary, "-t", table, "-F", chain, check=False)
        for chain in (c for c in chains if c.startswith(CHAIN_PREFIXES)):
            run(binary, "-t", table, "-X", chain, check=False)


def teardown(net: NodeNet = NET) -> None:
    """Undo :func:`setup` and the rules kube-proxy and the kubelet added (idempotent)."""
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary):
            delete_chains(binary)
    for line in run("nft", "list", "tables", check=False).stdout.splitlines():
        if "kube" in line:  # `table ip kube-proxy` (nftables mode) and the like
            run("nft", "delete", *line.split()[:3], check=False)
    run("ip", "link", "del", net.bridge, check=False)
    run("ip", "addr", "del", f"{net.node_ip}/32", "dev", "lo", check=False)


def _shim_sockets(node_dir: Path, socket: Path) -> list[Path]:
    """containerd 1.6 names a shim's socket /run/containerd/s/sha256(<socket>/<namespace>/<id>)."""
    tasks = node_dir / "containerd" / "state" / "io.containerd.runtime.v2.task"
    found = []
    for task in tasks.glob("*/*"):
        digest = hashlib.sha256(f"{socket}/{task.parent.name}/{task.name}".encode()).hexdigest()
        found.append(Path("/run/containerd/s") / digest)
    return found


def remove_host_files(node_dir: Path, socket: Path, preexisting: set[str], net: NodeNet = NET) -> None:
    """Our files in HOST_DIRS; the directories themselves when the node created them and they are empty."""
    doomed = _shim_sockets(node_dir, socket)
    doomed += list(Path("/var/lib/cni/results").glob(f"{net.cni_network}-*"))
    links = [p for p in Path("/var/log/containers").glob("*.log") if p.is_symlink()]
    doomed += [p for p in links if str(p.readlink()).startswith(str(node_dir))]
    doomed += [Path("/var/lib/kubelet/device-plugins/kubelet.sock")]
    for path in doomed:
        path.unlink(missing_ok=True)
    for top in HOST_DIRS:
        if str(top) not in preexisting and top.is_dir():
            for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


def leftovers(node_dir: Path, socket: Path, net: NodeNet = NET) -> list[str]:
    """What a stopped node left on this machine (empty when clean)."""
    found = [f"pod process {pid}" for pid in sorted(pod_pids())]
    found += [f"containerd shim {pid}" for pid in sorted(_shim_pids(socket))]
    found += [f"cgroup {d}" for d in _kubepods_dirs()]
    found += [f"mount {m}" for m in mounts_under(node_dir)]
    found += [f"network namespace {n}" for n in _our_netns(set(), net)]
    if run("ip", "link", "show", net.bridge, check=False).returncode == 0:
        found.append(f"bridge {net.bridge}")
    if f"inet {net.node_ip}/32" in run("ip", "-4", "-o", "addr", "show", "dev", "lo").stdout:
        found.append(f"address {net.node_ip} on lo")
    for binary in ("iptables", "ip6tables"):
        for table in TABLES:
            dump = run(f"{binary}-save", "-t", table, check=False).stdout
            found += [f"{binary} {table} {line}" for line in dump.splitlines() if _ours(line)]
    ruleset = run("nft", "list", "tables", check=False).stdout
    found += [f"nft {line}" for line in ruleset.splitlines() if "kube" in line or "graylane" in line]
    if node_dir.exists():
        found.append(f"directory {node_dir}")
    return found


def _ours(line: str) -> bool:
    return any(p in line for p in CHAIN_PREFIXES) or "graylane" in line
