"""Helpers for the rollout tests: programmable upstream processes, a bounded load thread, route objects.

``UpstreamProcess``: ``tests/upstream_app.py`` as a process; ``control(errorRate=0.5, delayMs=200)``.
``Load``: a background thread sending at most ``limit`` requests through the proxy until ``stop()``; it
records which version answered each request (``X-Upstream-Version``) and when.
``rollout_route(ns, rollout, weight=0)`` / ``upstreams(ns, stable_port, canary_port)``: the objects to apply.
``Rig``: both upstream processes, the route applied, its status and what the kube-mode proxy serves (the
``rig`` fixture in conftest.py).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.kubectl import Kubectl
from kopfharness import ProxyProcess, free_port
from waiting import eventually

UPSTREAM_APP = Path(__file__).resolve().parents[1] / "upstream_app.py"


class UpstreamProcess:
    def __init__(self, name: str, log_path: Path) -> None:
        self.name, self.port = name, free_port()
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(UPSTREAM_APP), "--name", name, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        eventually(self._up, what=f"upstream {name} listening", within=20, interval=0.05)

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__control", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def control(self, **knobs: Any) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/__control",
            data=json.dumps(knobs).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


class Load:
    """Requests through the proxy on a background thread (a fresh connection per request, bounded)."""

    def __init__(self, port: int, *, limit: int = 50_000, pause: float = 0.005) -> None:
        self.port, self.limit, self.pause = port, limit, pause
        self.answers: list[tuple[float, str, int]] = []  # (monotonic time, version, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.answers) < self.limit:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                self.answers.append(
                    (time.monotonic(), resp.getheader("X-Upstream-Version", "?"), resp.status)
                )
            except OSError:
                self.answers.append((time.monotonic(), "!", 0))
            finally:
                conn.close()
            self._stop.wait(self.pause)

    def versions_since(self, moment: float) -> set[str]:
        return {version for at, version, _ in list(self.answers) if at > moment}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def upstreams(ns: str, stable_port: int, canary_port: int) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "graylane.io/v1alpha1", "kind": "Upstream",
         "metadata": {"name": f"checkout-{v}", "namespace": ns}, "spec": {"url": f"http://127.0.0.1:{port}"}}
        for v, port in (("v1", stable_port), ("v2", canary_port))
    ]  # fmt: skip


def rollout_route(ns: str, rollout: dict[str, Any], *, weight: float = 0) -> dict[str, Any]:
    return {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": "checkout", "namespace": ns},
        "spec": {"stable": "checkout-v1", "canary": "checkout-v2", "weight": weight, "rollout": rollout},
    }


def analysis(**overrides: Any) -> dict[str, Any]:
    """Short-interval analysis settings for tests: window 4s, 5 requests suffice, 2 failures roll back."""
    return {"window": "4s", "minRequests": 5, "failureThreshold": 2, **overrides}


def route_status(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    return dict(kubectl.json("get", "canaryroute", "checkout", "-n", ns).get("status") or {})


def patch_spec(kubectl: Kubectl, ns: str, spec: dict[str, Any]) -> None:
    kubectl("patch", "canaryroute", "checkout", "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def event_reasons(kubectl: Kubectl, ns: str) -> dict[str, list[dict[str, Any]]]:
    """The route's Events by reason."""
    listing = kubectl.json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=checkout")
    out: dict[str, list[dict[str, Any]]] = {}
    for event in listing["items"]:
        out.setdefault(event["reason"], []).append(event)
    return out


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


DEADLINE = 60


class Rig:
    def __init__(self, kubectl: Kubectl, ns: str, proxy: ProxyProcess, tmp: Path) -> None:
        self.kubectl, self.ns, self.proxy = kubectl, ns, proxy
        self.key = f"{ns}/checkout"
        self.stable = UpstreamProcess("v1", tmp / "v1.log")
        self.canary = UpstreamProcess("v2", tmp / "v2.log")
        self.loads: list[Load] = []

    def start(self, rollout: dict[str, Any], *, weight: float = 0) -> None:
        self.kubectl.apply([*upstreams(self.ns, self.stable.port, self.canary.port)])
        self.kubectl.apply(rollout_route(self.ns, rollout, weight=weight))

    def status(self) -> dict[str, Any]:
        return route_status(self.kubectl, self.ns)

    def until(self, check: Callable[[dict[str, Any]], Any], what: str) -> dict[str, Any]:
        return eventually(lambda: (s := self.status()) and check(s) and s, what=what, within=DEADLINE)

    def served_weight(self, weight: float) -> dict[str, Any]:
        return eventually(
            lambda: (r := self.proxy.route(self.key)) and r["weight"] == weight and r,
            what=f"the proxy serves weight {weight}",
            within=DEADLINE,
        )

    def load(self) -> Load:
        load = Load(self.proxy.port)
        self.loads.append(load)
        return load

    def close(self) -> None:
        for load in self.loads:
            load.stop()
        self.stable.stop()
        self.canary.stop()
