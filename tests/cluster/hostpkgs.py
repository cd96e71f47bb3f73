"""The Debian packages the test node needs, installed when missing: the one place that lists them.

Used by ``make node-packages`` (a prerequisite of ``make cluster-up``) and by ``.ci/run``. Standard
library only, so it runs before the virtualenv exists. ``apt-get update`` runs once, and only when
something is missing. With ``GRAYLANE_NODE=0`` nothing is installed.

CLI: ``python3 tests/cluster/hostpkgs.py install`` (or ``check``: exit 1 and list what is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# containerd + runc run the pods; the CNI plugins (bridge, host-local, loopback, portmap) wire them;
# iptables (iptables-nft) is what kube-proxy and the kubelet program; conntrack lets kube-proxy flush
# stale UDP entries (DNS); nftables gives `nft` for inspecting and cleaning up rules.
PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "nftables", "conntrack")


def node_enabled() -> bool:
    return os.environ.get("GRAYLANE_NODE", "1") != "0"


def missing(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages dpkg does not report as installed."""
    if not shutil.which("dpkg-query"):
        return list(packages)
    absent = []
    for name in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", name], capture_output=True, text=True, check=False
        )
        if result.stdout.strip() != "installed":
            absent.append(name)
    return absent


def install(packages: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    subprocess.run(["apt-get", *lock, "update", "-q"], check=True, env=env)
    cmd = ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *packages]
    subprocess.run(cmd, check=True, env=env)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "install"
    if not node_enabled():
        return 0
    absent = missing()
    if not absent:
        return 0
    if command == "check":
        print(f"hostpkgs.py: missing Debian packages: {' '.join(absent)}", file=sys.stderr)
        return 1
    if not shutil.which("apt-get"):
        print(f"hostpkgs.py: no apt-get; install these packages by hand: {' '.join(absent)}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print(f"hostpkgs.py: not root; run `sudo apt-get install {' '.join(absent)}`", file=sys.stderr)
        return 1
    print(f"hostpkgs.py: installing {' '.join(absent)}", file=sys.stderr)
    install(absent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
