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
import atexit
import ctypes
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

if not __package__:  # run as a script: make the `cluster` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import build, flags, pki
from cluster.ports import free_port
from cluster.processes import Proc, alive, read_rss, stop_procs
from cluster.readiness import ControlPlaneError, get_json, log_tail, wait_for

ORDER = ("etcd", "kube-apiserver", "kube-controller-manager")
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for subprocess.Popen: the child gets SIGKILL when the spawning thread dies (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_free_port, _die_with_parent = free_port, die_with_parent  # older names, kept for callers


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class ControlPlane:
    """One local control plane. ``detach=True`` (the CLI's ``up``) lets it outlive this process."""

    def __init__(
        self,
        *,
        state_dir: Path,
        binary: Path | None = None,
        detach: bool = False,
        startup_timeout: float = 120.0,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.binary = binary
        self.detach = detach
        self.startup_timeout = startup_timeout
        self.dir = self.state_dir / "controlplane"
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.server = ""
        self.startup_seconds = 0.0
        self.procs: dict[str, Proc] = {}
        self._pki: pki.Pki | None = None

    # -- public API -------------------------------------------------------------------------
    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def apiserver_rss_bytes(self) -> int:
        return read_rss(self.procs["kube-apiserver"].pid)

    def start(self) -> ControlPlane:
        """Start all three processes and wait until the cluster serves; raise ControlPlaneError if not."""
        if self.procs:
            raise ControlPlaneError("already started")
        binary = self.binary or build.ensure_binary(build=False)
        started = time.monotonic()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "logs").mkdir(parents=True)
        self._pki = pki.write_pki(self.dir / "pki")
        if not self.detach:
            atexit.register(self.stop)
        try:
            self._start_all(binary, started + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self._record()
        return self

    def stop(self) -> None:
        """Stop every process this control plane started (idempotent)."""
        stop_procs([self.procs[n] for n in reversed(ORDER) if n in self.procs])
        self.procs = {}
        if not self.detach:
            atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------
    def _start_all(self, binary: Path, deadline: float) -> None:
        assert self._pki is not None
        p = self._pki
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self.server = f"https://127.0.0.1:{api_port}"
        self._spawn(binary, "etcd", flags.etcd(self.dir, etcd_url, f"http://127.0.0.1:{peer_port}"))
        wait_for(self, "etcd", deadline, lambda: get_json(f"{etcd_url}/health").get("health") == "true")
        self._spawn(binary, "kube-apiserver", flags.apiserver(self.dir, etcd_url, api_port, p))
        pki.write_kubeconfig(
            self.kubeconfig, server=self.server, ca=p.ca_crt, cert=p.admin_crt, key=p.admin_key, user="admin"
        )
        kcm_kubeconfig = self.dir / "kcm.kubeconfig"
        pki.write_kubeconfig(
            kcm_kubeconfig, server=self.server, ca=p.ca_crt, cert=p.kcm_crt, key=p.kcm_key, user="kcm"
        )
        wait_for(self, "kube-apiserver", deadline, lambda: self._get("/readyz", raw=True) == "ok")
        wait_for(self, "kube-apiserver", deadline, lambda: bool(self._get("/api/v1/namespaces/default")))
        self._spawn(binary, "kube-controller-manager", flags.controller_manager(kcm_kubeconfig, p))
        sa = "/api/v1/namespaces/default/serviceaccounts/default"
        wait_for(self, "kube-controller-manager", deadline, lambda: bool(self._get(sa)))

    def _get(self, path: str, *, raw: bool = False) -> object:
        assert self._pki is not None
        return get_json(self.server + path, pki=self._pki, raw=raw)

    def _spawn(self, binary: Path, name: str, args: list[str]) -> None:
        log = open(self.dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        kwargs: dict[str, object] = {}
        if self.detach:
            kwargs["start_new_session"] = True
        else:
            first = self.procs.get(ORDER[0])
            kwargs["process_group"] = first.pid if first else 0
            if _LIBC is not None:
                kwargs["preexec_fn"] = die_with_parent
        with log:
            popen = subprocess.Popen(
                [str(binary), name, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                **kwargs,  # type: ignore[call-overload]
            )
        self.procs[name] = Proc.of(name, popen)
        self._record()  # so `down` can stop a half-started control plane too

    def _record(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "startup_seconds": round(self.startup_seconds, 2),
            "processes": {name: proc.to_json() for name, proc in self.procs.items()},
        }
        (self.dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")


# -- CLI helpers (work from the recorded state, across processes) ------------------------------
def _recorded(state_dir: Path) -> tuple[dict[str, object], list[Proc]]:
    path = Path(state_dir) / "controlplane" / "state.json"
    if not path.is_file():
        return {}, []
    state = json.loads(path.read_text())
    procs = [Proc.from_json(name, data) for name, data in state.get("processes", {}).items()]
    return state, procs


def stop_recorded(state_dir: Path) -> list[str]:
    """Stop the processes recorded in ``state_dir`` (from ``up``); return the names that were running."""
    _, procs = _recorded(state_dir)
    procs.sort(key=lambda p: -ORDER.index(p.name) if p.name in ORDER else 0)
    running = [p.name for p in procs if alive(p)]
    stop_procs(procs)
    (Path(state_dir) / "controlplane" / "state.json").unlink(missing_ok=True)
    return running


def status(state_dir: Path) -> dict[str, object]:
    state, procs = _recorded(state_dir)
    return {
        "server": state.get("server"),
        "kubeconfig": state.get("kubeconfig"),
        "startup_seconds": state.get("startup_seconds"),
        "processes": {
            p.name: {"pid": p.pid, "running": alive(p), "rss_mib": round(read_rss(p.pid) / 2**20, 1)}
            for p in procs
        },
    }


def _cmd_up(state_dir: Path, binary: Path | None) -> int:
    current = status(state_dir)
    procs = current["processes"]
    assert isinstance(procs, dict)
    if sorted(procs) == sorted(ORDER) and all(p["running"] for p in procs.values()):
        print(f"launcher: already running at {current['server']}; kubeconfig {current['kubeconfig']}")
        return 0
    stop_recorded(state_dir)
    cp = ControlPlane(state_dir=state_dir, binary=binary, detach=True)
    try:
        cp.start()
    except (ControlPlaneError, build.BuildError) as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 1
    rss = cp.apiserver_rss_bytes() / 2**20
    print(
        f"launcher: control plane up at {cp.server} in {cp.startup_seconds:.1f}s "
        f"(kube-apiserver RSS {rss:.0f} MiB); pids {cp.pids}\n"
        f"launcher: kubeconfig {cp.kubeconfig}; stop with `make cluster-down`"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".graylane"))
    parser.add_argument("--binary", type=Path, default=None, help="default: the cached build")
    args = parser.parse_args(argv)
    if args.command == "up":
        return _cmd_up(args.state_dir, args.binary)
    if args.command == "down":
        stopped = stop_recorded(args.state_dir)
        print(f"launcher: stopped {', '.join(stopped) if stopped else 'nothing (not running)'}")
        return 0
    print(json.dumps(status(args.state_dir), indent=2))
    return 0


__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "die_with_parent",
    "free_port",
    "log_tail",
    "status",
    "stop_recorded",
]

if __name__ == "__main__":
    sys.exit(main())
