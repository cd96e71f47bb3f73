"""Shared pieces of ``make bench-scale``: proxy processes, /proc figures, HTTP polling, result rows."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # kubebench (cluster, percentile, peak RSS) and tests/ through it

import kubebench  # noqa: E402
from cluster.ports import free_port  # noqa: E402

BIN = kubebench.BIN
ROOT = kubebench.ROOT
percentile = kubebench.percentile


def proc_status(pid: int, field_name: str) -> float:
    """A ``/proc/<pid>/status`` size (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def explain_weight(admin: str, host: str, path: str) -> float | None:
    """The weight the proxy applies to the route serving ``host`` + ``path`` (``/explain``)."""
    query = urllib.parse.urlencode({"host": host, "path": path})
    status, body = get(f"{admin}/explain?{query}", timeout=2)
    if status != 200:
        return None
    weight = json.loads(body).get("weight")
    return float(weight) if weight is not None else None


def wait_for(check: Callable[[], Any], *, deadline: float, interval: float = 0.002) -> float:
    """Seconds until ``check()`` is truthy (polled every ``interval``); raises TimeoutError."""
    started = time.monotonic()
    end = started + deadline
    while time.monotonic() < end:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"not within {deadline}s")


@dataclass
class Proxy:
    """A ``graylane-proxy`` process on free loopback ports."""

    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    started: float
    log: Path

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        return get(self.admin + "/readyz", timeout=1)[0] == 200

    def wait_ready(self, deadline: float = 900) -> float:
        """Seconds from the process start to ``/readyz`` 200 (polled every 20 ms)."""
        wait_for(self.ready, deadline=deadline, interval=0.02)
        return time.monotonic() - self.started

    def metric(self, name: str) -> float:
        _, body = get(self.admin + "/metrics", timeout=30)
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn_proxy(args: list[str], log: Path, *, env: dict[str, str] | None = None) -> Proxy:
    port, admin = free_port(), free_port()
    cmd = [
        str(BIN / "graylane-proxy"),
        "--listen",
        f"127.0.0.1:{port}",
        "--admin-listen",
        f"127.0.0.1:{admin}",
    ]
    out = log.open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [*cmd, *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    return Proxy(proc, port, admin, started, log)


@contextlib.contextmanager
def proxy(args: list[str], log: Path, *, env: dict[str, str] | None = None) -> Iterator[Proxy]:
    p = spawn_proxy(args, log, env=env)
    try:
        yield p
    finally:
        p.stop()


@dataclass
class Results:
    """Measured rows, keyed like :data:`report.ROWS`; notes are printed under the table."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value
        print(f"  {key}: {value}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)
