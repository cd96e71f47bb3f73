"""What the proxy benches share: nginx configs, processes pinned to a CPU, wrk runs parsed into figures."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PROXY_CPU = "1"
LOAD_CPU = "0"


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
def process(cmd: list[str], *, cpu: str, port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(["taskset", "-c", cpu, *cmd], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
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
