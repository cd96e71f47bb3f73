"""What the proxy benches share: processes pinned to a CPU, wrk runs and their medians, nginx configs, and the
graylane command as the chart runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cluster.ports import free_port

HERE = Path(__file__).resolve().parent
PROXY_CPU = "1"
LOAD_CPU = "0"
__all__ = ["HERE", "LOAD_CPU", "PROXY_CPU", "free_port"]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def nginx_conf(work: Path, name: str, body: str) -> Path:
    conf = work / f"{name}.conf"
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/{name}.body; proxy_temp_path {work}/{name}.proxy;
  fastcgi_temp_path {work}/{name}.fcgi; uwsgi_temp_path {work}/{name}.uwsgi;
  scgi_temp_path {work}/{name}.scgi;
  keepalive_requests 1000000;
{body}
}}
"""
    )
    return conf


@contextlib.contextmanager
def process(
    cmd: list[str], *, cpu: str, port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` pinned to ``cpu`` until the block ends (taskset execs it: its pid is the command's)."""
    proc = subprocess.Popen(["taskset", "-c", cpu, *cmd], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield proc
    finally:
        stop(proc, timeout=30)


def stop(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited within ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(url: str, *, seconds: int, connections: int, headers: list[str]) -> dict[str, float]:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p50": _latency(out, "50%"),
        "p99": _latency(out, "99%"),
        "non2xx": float(errors.group(1)) if errors else 0.0,
        "errors": float(sum(int(n) for n in sockets.groups())) if sockets else 0.0,
    }


def median_of(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def _latency(out: str, pct: str) -> float:
    m = re.search(rf"{re.escape(pct)}\s+([\d.]+)(us|ms|s)", out)
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def graylane_cmd(
    conf_dir: Path, port: int, admin: int, profile: Path | None, server: str | None = None
) -> list[str]:
    """The command as the chart runs it (file mode instead of --kube); ``server`` only for the extra row."""
    base = ["--config-dir", str(conf_dir), "--listen", f"127.0.0.1:{port}",
            "--admin-listen", f"127.0.0.1:{admin}", "--log-level", "WARNING"]  # fmt: skip
    if server is not None:
        base += ["--server", server]
    if profile is not None:
        return [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "graylane.proxy.cli", *base]
    return [sys.executable, "-m", "graylane.proxy.cli", *base]


def check_routes(admin: int, server: str) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/routes", timeout=5) as resp:
        body = json.loads(resp.read())
    if not body["routes"] or body["rejected"]:
        raise RuntimeError(f"graylane did not load the bench route: {body}")
    if body["server"] != server:
        raise RuntimeError(f"expected the {server} server, the proxy runs {body['server']}")


def bench_doc(stable: int, canary: int) -> dict[str, object]:
    """The bench route, unsealed: weight 0, no rules, stable (v1) and canary (v2) on these ports."""
    return {
        "schemaVersion": 1,
        "route": {"namespace": "bench", "name": "app", "uid": "u-bench", "generation": 1},
        "hosts": [], "pathPrefix": "/", "stable": "v1", "canary": "v2",
        "upstreams": {
            name: {"url": f"http://127.0.0.1:{port}", "metadata": {"version": name},
                   "timeoutSeconds": 30, "maxConnections": 1024}
            for name, port in (("v1", stable), ("v2", canary))
        },
        "rules": [], "versionRouting": None, "weight": 0, "salt": "bench/app", "sticky": None, "jwt": None,
        "requestHeaders": {},
    }  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
