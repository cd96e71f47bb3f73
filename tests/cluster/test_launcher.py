"""The launcher leaves no process behind: after stop(), Ctrl-C, a killed parent, and `up` + `down`.

These tests start their own small control planes from the local binary, so they always test the
launcher (they do not run against GRAYLANE_TEST_KUBECONFIG clusters).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster import build, pki
from cluster.launcher import CP_ORDER, ControlPlane, ControlPlaneError, status
from cluster.processes import Proc, alive

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
TESTS_DIR = Path(__file__).resolve().parents[1]

# A child Python that starts a control plane in a context manager, prints its pids, then waits.
HOLDER = """
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job (CI) starts with SIGINT ignored
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from cluster.launcher import ControlPlane
from cluster.processes import start_ticks
with ControlPlane(state_dir=Path(sys.argv[2]), binary=Path(sys.argv[3])) as cp:
    print(json.dumps({n: [p, start_ticks(p)] for n, p in cp.pids.items()}), flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def binary() -> Path:
    try:
        return build.ensure_binary(build=False)
    except build.BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


def _procs(pids: dict[str, list[int]]) -> list[Proc]:
    return [Proc(name=n, pid=pid, start_ticks=ticks) for n, (pid, ticks) in pids.items()]


def _all_gone(procs: list[Proc], deadline: float = 30.0) -> list[str]:
    """Names still running after the deadline (polling; the processes are not our children)."""
    end = time.monotonic() + deadline
    while (left := [p.name for p in procs if alive(p)]) and time.monotonic() < end:
        time.sleep(0.1)
    return left


def test_pki_identities(tmp_path: Path) -> None:
    files = pki.write_pki(tmp_path)
    serving = x509.load_pem_x509_certificate(files.serving_crt.read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    admin = x509.load_pem_x509_certificate(files.admin_crt.read_bytes())
    orgs = [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters"]
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oct(files.admin_key.stat().st_mode & 0o777) == "0o600"


def test_stop_leaves_no_process_and_frees_the_port(tmp_path: Path, binary: Path) -> None:
    plane = ControlPlane(state_dir=tmp_path, binary=binary).start()
    procs = list(plane.procs.values())
    assert [p.name for p in procs] == list(CP_ORDER)
    assert all(alive(p) for p in procs)
    assert plane.apiserver_rss_bytes() > 0
    port = int(plane.server.rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    plane.stop()
    assert [p.popen.returncode is not None for p in procs if p.popen] == [True, True, True]
    by_procfs = [Proc(name=p.name, pid=p.pid, start_ticks=p.start_ticks) for p in procs]
    assert [p.name for p in by_procfs if alive(p)] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    plane.stop()  # idempotent


def _holder(tmp_path: Path, binary: Path) -> tuple[subprocess.Popen[str], list[Proc]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(TESTS_DIR), str(tmp_path / "cp"), str(binary)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if not line:
        holder.wait()
        pytest.fail(f"the holder process did not start a control plane: {holder.stderr.read()}")  # type: ignore[union-attr]
    procs = _procs(json.loads(line))
    assert all(alive(p) for p in procs)
    return holder, procs


def test_ctrl_c_stops_every_process(tmp_path: Path, binary: Path) -> None:
    holder, procs = _holder(tmp_path, binary)
    holder.send_signal(signal.SIGINT)
    assert holder.wait(timeout=60) != 0  # KeyboardInterrupt propagates after the cleanup
    assert _all_gone(procs) == []


def test_killed_parent_takes_its_children_along(tmp_path: Path, binary: Path) -> None:
    holder, procs = _holder(tmp_path, binary)
    holder.kill()  # SIGKILL: no Python cleanup runs; PR_SET_PDEATHSIG must do it
    holder.wait(timeout=30)
    assert _all_gone(procs) == []


def test_cli_up_keeps_running_until_down(tmp_path: Path, binary: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(LAUNCHER), *args, "--state-dir", str(tmp_path)]
        # control plane only: the session's node is this machine's one
        env = {**os.environ, "GRAYLANE_NODE": "0"}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False, env=env)

    up = cli("up", "--binary", str(binary))
    assert up.returncode == 0, up.stderr
    state = status(tmp_path)
    procs = state["processes"]
    assert isinstance(procs, dict) and sorted(procs) == sorted(CP_ORDER)
    assert all(p["running"] for p in procs.values()), state  # they outlived the `up` command
    assert (tmp_path / "kubeconfig").is_file()
    again = cli("up", "--binary", str(binary))
    assert "already running" in again.stdout
    recorded = json.loads((tmp_path / "controlplane" / "state.json").read_text())["processes"]
    down = cli("down")
    assert down.returncode == 0, down.stderr
    left = _all_gone([Proc.from_json(n, d) for n, d in recorded.items()], deadline=5)
    assert left == []
    assert "nothing" in cli("down").stdout


def test_a_process_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    plane = ControlPlane(state_dir=tmp_path, binary=Path("/bin/false"), startup_timeout=30)
    with pytest.raises(ControlPlaneError, match=r"etcd exited while starting; .*etcd\.log"):
        plane.start()
    assert plane.procs == {}


def test_the_fixture_fails_rather_than_skips_without_a_control_plane(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRAYLANE_TEST_KUBECONFIG"}
    env["GRAYLANE_TESTCLUSTER_BINARY"] = str(tmp_path / "missing")
    real = Path(__file__).with_name("test_real_cluster.py")
    test = f"{real}::test_crd_with_schema_and_cel_rule_is_established"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(TESTS_DIR.parent),
        test,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout
    assert "skipped" not in result.stdout
    assert "does not exist" in result.stdout
