"""Start and stop the test control plane: etcd -> kube-apiserver -> kube-controller-manager.

Three processes of the multi-call binary built by ``build.py``, on free loopback ports, with a
private data dir, CA, serving cert, admin client cert (``O=system:masters``) and service-account key.
The admin kubeconfig is written to ``<state_dir>/kubeconfig``; everything else lives under
``<state_dir>/controlplane/`` (``pki/``, ``etcd/``, ``logs/<process>.log``, ``state.json``).

Library::

    from cluster.launcher import ControlPlane
    with ControlPlane(state_dir=tmp) as cp:      # binary defaults to build.ensure_binary(build=False)
        run(["kubectl", "--kubeconfig", str(cp.kubeconfig), "get", "ns"])

In library mode the children share one process group, get SIGKILL if the starting thread dies
(Linux ``PR_SET_PDEATHSIG``; so call ``start()`` from a thread that outlives the cluster), and are
stopped by ``stop()``, the context manager, or ``atexit`` -- so Ctrl-C, a failing test run or a
killed pytest leaves no process behind.

CLI (used by ``make cluster-up`` / ``make cluster-down``)::

    python tests/cluster/launcher.py up     --state-dir .graylane   # detached; survives the command
    python tests/cluster/launcher.py status --state-dir .graylane
    python tests/cluster/launcher.py down   --state-dir .graylane
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the `cluster` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import build, nodenet
from cluster.controlplane import (
    CP_ORDER,
    ORDER,
    ControlPlane,
    _die_with_parent,
    _free_port,
    die_with_parent,
    node_enabled,
    status,
    stop_recorded,
)
from cluster.images import import_archives
from cluster.ports import free_port
from cluster.readiness import ControlPlaneError, log_tail


def _cmd_up(state_dir: Path, binary: Path | None) -> int:
    current = status(state_dir)
    procs = current["processes"]
    assert isinstance(procs, dict)
    node = node_enabled()
    if sorted(procs) == sorted(ORDER if node else CP_ORDER) and all(p["running"] for p in procs.values()):
        print(f"launcher: already running at {current['server']}; kubeconfig {current['kubeconfig']}")
        return 0
    stop_recorded(state_dir)
    cp = ControlPlane(state_dir=state_dir, binary=binary, detach=True, node=node)
    try:
        cp.start()
    except (ControlPlaneError, build.BuildError, nodenet.NodeError) as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 1
    rss = cp.apiserver_rss_bytes() / 2**20
    print(
        f"launcher: {'cluster (node Ready)' if node else 'control plane'} up at {cp.server} "
        f"in {cp.startup_seconds:.1f}s "
        f"(kube-apiserver RSS {rss:.0f} MiB); pids {cp.pids}\n"
        f"launcher: kubeconfig {cp.kubeconfig}; stop with `make cluster-down`"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "import-images"])
    parser.add_argument("archives", nargs="*", type=Path, help="import-images: docker-archive/OCI tars")
    parser.add_argument("--state-dir", type=Path, default=Path(".graylane"))
    parser.add_argument("--binary", type=Path, default=None, help="default: the cached build")
    args = parser.parse_args(argv)
    if args.command == "up":
        return _cmd_up(args.state_dir, args.binary)
    if args.command == "import-images":
        started = time.monotonic()
        try:
            refs = import_archives(state_dir=args.state_dir, archives=args.archives)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else ""
            print(f"launcher: import-images failed: {exc} {detail}".strip(), file=sys.stderr)
            return 1
        print(f"launcher: imported {', '.join(refs)} in {time.monotonic() - started:.1f}s")
        return 0
    if args.command == "down":
        stopped = stop_recorded(args.state_dir)
        print(f"launcher: stopped {', '.join(stopped) if stopped else 'nothing (not running)'}")
        return 0
    print(json.dumps(status(args.state_dir), indent=2))
    return 0


__all__ = [
    "CP_ORDER",
    "ORDER",
    "ControlPlane",
    "ControlPlaneError",
    "_die_with_parent",
    "_free_port",
    "die_with_parent",
    "free_port",
    "log_tail",
    "node_enabled",
    "status",
    "stop_recorded",
]

if __name__ == "__main__":
    sys.exit(main())
