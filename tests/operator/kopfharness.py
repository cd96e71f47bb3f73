"""Helpers for the operator suite (fixtures are in conftest.py).

``OperatorProcess``: one ``graylane-operator`` subprocess with its log.
``eventually`` lives in tests/waiting.py (the one for the whole suite).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cluster.kubectl import Kubectl
from cluster.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"
PEERING_CRDS = ROOT / "deploy" / "helm" / "graylane" / "crds" / "kopf.dev_peerings.yaml"
OPERATOR_BIN = Path(sys.executable).with_name("graylane-operator")
T = TypeVar("T")


@dataclass(frozen=True)
class OperatorNamespaces:
    routes: str
    config: str


class OperatorProcess:
    """One ``graylane-operator`` subprocess; ``log()`` returns what it has written so far."""

    def __init__(self, args: list[str], kubeconfig: Path, log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONUNBUFFERED="1")
        env.pop("POD_NAMESPACE", None)
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [str(OPERATOR_BIN), *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


IDLE = re.compile(r"Idle after (\d+) reconciles \((\d+) API writes since start\)")


def idle_figures(proc: OperatorProcess) -> tuple[int, int] | None:
    """(reconciles, API writes) of the operator's last "Idle after" line: the route controller says it
    each time its queue runs empty."""
    found = IDLE.findall(proc.log())
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def route_configmaps(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    """The route ConfigMaps in ``namespace`` by name."""
    listing = kubectl.json("get", "configmaps", "-n", namespace, "-l", "graylane.io/route-config=true")
    return {cm["metadata"]["name"]: cm for cm in listing["items"]}


def route_document(configmap: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(configmap["data"]["route.json"]))


def route(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body = {"hosts": [f"{name}.example.com"], "stable": "checkout-v1", "canary": "checkout-v2", "weight": 10}
    return {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body | spec,
    }


def condition(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    obj = kubectl.json("get", "canaryroute", name, "-n", namespace)
    conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
    return dict(conditions.get("Ready") or {})


def reason_is(kubectl: Kubectl, namespace: str, name: str, reason: str) -> dict[str, Any] | None:
    cond = condition(kubectl, namespace, name)
    return cond if cond.get("reason") == reason else None


class ProxyProcess:
    """``graylane-proxy --kube`` as a subprocess watching the route ConfigMaps of one namespace."""

    def __init__(
        self, namespace: str, kubeconfig: Path, log_path: Path, *extra: str, tls: bool = False
    ) -> None:
        self.port, self.admin_port, self.tls_port = free_port(), free_port(), free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        args = ["--kube", "--namespace", namespace, "--kubeconfig", str(kubeconfig), "--listen",
                f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin_port}"]  # fmt: skip
        if tls:  # HTTPS beside HTTP, as the chart runs it with tls.enabled
            args += ["--listen-tls", f"127.0.0.1:{self.tls_port}"]
        args += extra
        self._log = log_path.open("w")
        self.log_path = log_path
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("graylane-proxy")), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def routes(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self.admin + "/routes", timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except (urllib.error.URLError, OSError):
            return None

    def route(self, key: str) -> dict[str, Any] | None:
        for entry in (self.routes() or {}).get("routes", []):
            if entry["route"] == key:
                return dict(entry)
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
