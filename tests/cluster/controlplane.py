"""The test cluster as an object: etcd -> kube-apiserver -> kube-controller-manager (-> the node).

``ControlPlane`` starts the processes of the multi-call binary (``build.py``) on free ports, with a
private data dir, CA, serving cert, admin client cert (``O=system:masters``) and service-account key,
and -- with ``node=True`` -- the node of ``node.py``. ``launcher.py`` is its CLI and documents it.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from cluster import build, flags, nodenet, pki
from cluster.node import KCM_NODE_CONTROLLERS, NODE_ORDER, claim_node, cleanup_node, node_owner, start_node
from cluster.nodeconf import NET
from cluster.ports import free_port
from cluster.processes import Proc, alive, read_rss, stop_procs
from cluster.readiness import ControlPlaneError, get_json, wait_for

CP_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager")
ORDER = CP_ORDER + NODE_ORDER
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
        startup_timeout: float = 240.0,
        node: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.binary = binary
        self.detach = detach
        self.startup_timeout = startup_timeout
        self.node = node
        self.saved_sysctls: dict[str, str] = {}
        self.logs: dict[str, Path] = {}
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
        if self.node:
            self._prepare_node()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "logs").mkdir(parents=True)
        self._pki = pki.write_pki(self.dir / "pki")
        if not self.detach:
            atexit.register(self.stop)
        try:
            if self.node:
                self.saved_sysctls = nodenet.read_sysctls()
                nodenet.setup()
            self._start_all(binary, started + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self._record()
        return self

    def _prepare_node(self) -> None:
        problems = nodenet.preflight()
        if problems:
            raise ControlPlaneError(
                "this host cannot run the node (GRAYLANE_NODE=0: control plane only):\n  - "
                + "\n  - ".join(problems)
            )
        owner = node_owner()
        if owner and owner != self.state_dir:
            running = [name for name, p in _procs_of(status(owner)).items() if p["running"]]
            if running:
                raise ControlPlaneError(
                    f"a node of state dir {owner} runs on this machine ({', '.join(running)}); "
                    "there can be one: "
                    f"stop it with `python tests/cluster/launcher.py down --state-dir {owner}`"
                )
            stop_recorded(owner)  # a crashed node of another state dir (a killed test session)
            cleanup_node(owner, {})
        stop_recorded(self.state_dir)  # a previous run of this state dir, crashed or not
        cleanup_node(self.state_dir, {})
        claim_node(self.state_dir)

    def stop(self) -> None:
        """Stop every process this control plane started, and clean the node up (idempotent)."""
        stop_procs([self.procs[n] for n in reversed(ORDER) if n in self.procs])
        self.procs = {}
        if self.node:
            cleanup_node(self.state_dir, self.saved_sysctls)
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
        node_ip = NET.node_ip if self.node else None
        self.server = f"https://{node_ip or '127.0.0.1'}:{api_port}"
        self._spawn(binary, "etcd", flags.etcd(self.dir, etcd_url, f"http://127.0.0.1:{peer_port}"))
        wait_for(self, "etcd", deadline, lambda: _healthy(get_json(f"{etcd_url}/health")))
        self._spawn(binary, "kube-apiserver", flags.apiserver(self.dir, etcd_url, api_port, p, node_ip),
                    env=flags.APISERVER_ENV)  # fmt: skip
        pki.write_kubeconfig(
            self.kubeconfig, server=self.server, ca=p.ca_crt, cert=p.admin_crt, key=p.admin_key, user="admin"
        )
        kcm_kubeconfig = self.dir / "kcm.kubeconfig"
        pki.write_kubeconfig(
            kcm_kubeconfig, server=self.server, ca=p.ca_crt, cert=p.kcm_crt, key=p.kcm_key, user="kcm"
        )
        wait_for(self, "kube-apiserver", deadline, lambda: self._get("/readyz", raw=True) == "ok")
        wait_for(self, "kube-apiserver", deadline, lambda: bool(self._get("/api/v1/namespaces/default")))
        extra = KCM_NODE_CONTROLLERS if self.node else ()
        self._spawn(binary, "kube-controller-manager", flags.controller_manager(kcm_kubeconfig, p, extra))
        sa = "/api/v1/namespaces/default/serviceaccounts/default"
        wait_for(self, "kube-controller-manager", deadline, lambda: bool(self._get(sa)))
        if self.node:
            start_node(self, p, binary, deadline)

    def _get(self, path: str, *, raw: bool = False) -> object:
        assert self._pki is not None
        return get_json(self.server + path, pki=self._pki, raw=raw)

    get = _get

    def wait(self, name: str, deadline: float, check: Callable[[], object]) -> None:
        wait_for(self, name, deadline, check)

    def log_path(self, name: str) -> Path:
        return self.logs.get(name, self.dir / "logs" / f"{name}.log")

    def _spawn(self, binary: Path, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.spawn_exec([str(binary), name, *args], name, self.dir / "logs", env)

    def spawn_exec(
        self, argv: list[str], name: str, log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        """Start ``argv`` as the process ``name``, logging to ``log_dir/<name>.log``; ``env`` adds to ours."""
        log_dir.mkdir(parents=True, exist_ok=True)
        self.logs[name] = log_dir / f"{name}.log"
        log = open(self.logs[name], "ab")  # noqa: SIM115 - the child owns it
        kwargs: dict[str, object] = {"env": {**os.environ, **env} if env else None}
        if self.detach:
            kwargs["start_new_session"] = True
        else:
            first = self.procs.get(ORDER[0])
            kwargs["process_group"] = first.pid if first else 0
            if _LIBC is not None:
                kwargs["preexec_fn"] = die_with_parent
        with log:
            popen = subprocess.Popen(
                argv,
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
            "node": self.node,
            "saved_sysctls": self.saved_sysctls,
            "kubeconfig": str(self.kubeconfig),
            "startup_seconds": round(self.startup_seconds, 2),
            "processes": {name: proc.to_json() for name, proc in self.procs.items()},
        }
        (self.dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def _healthy(body: object) -> bool:
    return isinstance(body, dict) and body.get("health") == "true"


def node_enabled() -> bool:
    """The node runs unless ``GRAYLANE_NODE=0`` (control plane only, as before the node existed)."""
    return os.environ.get("GRAYLANE_NODE", "1") != "0"


# -- from the recorded state, across processes (the CLI) ---------------------------------------
def _procs_of(current: dict[str, object]) -> dict[str, dict[str, object]]:
    procs = current["processes"]
    assert isinstance(procs, dict)
    return procs


def _recorded(state_dir: Path) -> tuple[dict[str, object], list[Proc]]:
    path = Path(state_dir) / "controlplane" / "state.json"
    if not path.is_file():
        return {}, []
    state = json.loads(path.read_text())
    procs = [Proc.from_json(name, data) for name, data in state.get("processes", {}).items()]
    return state, procs


def stop_recorded(state_dir: Path) -> list[str]:
    """Stop the processes recorded in ``state_dir`` (from ``up``), clean the node up; return what ran."""
    state, procs = _recorded(state_dir)
    procs.sort(key=lambda p: -ORDER.index(p.name) if p.name in ORDER else 0)
    running = [p.name for p in procs if alive(p)]
    stop_procs(procs)
    if state.get("node"):
        saved = state.get("saved_sysctls")
        cleanup_node(Path(state_dir), dict(saved) if isinstance(saved, dict) else {})
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
