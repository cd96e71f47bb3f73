"""Child processes of the test control plane: identity (pid + start time), liveness, RSS, stopping.

A process is identified by its pid *and* its start time in ``/proc/<pid>/stat``, so a recorded pid
that the kernel has since reused for another program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field


@dataclass
class Proc:
    name: str
    pid: int
    start_ticks: int
    popen: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, popen: subprocess.Popen[bytes]) -> Proc:
        return cls(name=name, pid=popen.pid, start_ticks=start_ticks(popen.pid) or 0, popen=popen)

    @classmethod
    def from_json(cls, name: str, data: dict[str, int]) -> Proc:
        return cls(name=name, pid=int(data["pid"]), start_ticks=int(data["start_ticks"]))

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_ticks": self.start_ticks}


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            data = stat.read()
    except OSError:
        return None
    # Field 2 (comm) is parenthesised and may hold spaces; fields from 3 (state) on follow it.
    return data.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22: starttime


def alive(proc: Proc) -> bool:
    """True while the process runs (a zombie or a reused pid counts as gone)."""
    if proc.popen is not None:
        return proc.popen.poll() is None
    fields = _stat_fields(proc.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc.start_ticks


def read_rss(pid: int) -> int:
    """Resident set size in bytes (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _wait_gone(proc: Proc, timeout: float) -> bool:
    if proc.popen is not None:
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while alive(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal(proc: Proc, sig: signal.Signals) -> None:
    if alive(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def stop_procs(procs: list[Proc], *, timeout: float = 15.0) -> None:
    """SIGTERM each process in the given order and wait for it; SIGKILL it after ``timeout``."""
    for proc in procs:
        _signal(proc, signal.SIGTERM)
        if not _wait_gone(proc, timeout):
            _signal(proc, signal.SIGKILL)
            _wait_gone(proc, timeout)
