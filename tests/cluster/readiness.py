"""Readiness checks for the test control plane: HTTP(S) probes with the admin client certificate."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.launcher import ControlPlane
    from cluster.pki import Pki


class ControlPlaneError(RuntimeError):
    """The control plane did not start (the message holds the failing process's log tail)."""


def _context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_crt))
    context.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
    return context


def get_json(url: str, *, pki: Pki | None = None, raw: bool = False, timeout: float = 5.0) -> object:
    """GET url; the parsed JSON body (or the text if ``raw``). Raises OSError on any HTTP error."""
    context = _context(pki) if pki else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        body = response.read().decode()
    return body.strip() if raw else json.loads(body)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for(cp: ControlPlane, name: str, deadline: float, check: Callable[[], object]) -> None:
    """Poll ``check`` until it returns true; fail early if any started process exits."""
    from cluster.processes import alive

    while True:
        for proc in cp.procs.values():
            if not alive(proc):
                log = cp.log_path(proc.name)
                raise ControlPlaneError(f"{proc.name} exited while starting; {log}:\n{log_tail(log)}")
        try:
            if check():
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            log = cp.log_path(name)
            raise ControlPlaneError(f"{name} not ready before the deadline; {log}:\n{log_tail(log)}")
        time.sleep(0.1)
