"""The whole product on a cluster, run the way the chart runs it: used by ``tests/e2e`` and ``make demo``.

``LocalStack`` installs the Helm chart (CRDs, ServiceAccounts, RBAC, peering objects, Deployments scaled to
0 replicas: their pods would compete with the local processes once the node has the images), then runs the
operator and the proxy as local
processes with the container args the chart rendered, each authenticating with a token of the chart's own
ServiceAccount (``kubectl create token``). So what the chart grants is exactly what they can do. Demo
upstreams are ``tests/upstream_app.py`` processes on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cluster.kubectl import Kubectl
from cluster.launcher import _die_with_parent, _free_port

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "graylane"
BIN = Path(sys.executable).parent


@dataclass
class Process:
    """A child process with its log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, argv: list[str], *, logs: Path, env: dict[str, str] | None = None) -> Process:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            preexec_fn=_die_with_parent,
        )
    return Process(name, popen, log)


def wait_until(what: str, check: Callable[[], Any], *, timeout: float = 60.0, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last = exc
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}" + (f": {last}" if last else ""))


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class LocalStack:
    kubectl: Kubectl  # admin
    helm: Path
    workdir: Path
    release: str = "graylane"
    namespace: str = "graylane-system"
    watch: tuple[str, ...] = ("demo",)
    values: dict[str, Any] = field(default_factory=dict)
    procs: dict[str, Process] = field(default_factory=dict)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    tls_ports: dict[str, int] = field(default_factory=dict)

    # -- the chart ---------------------------------------------------------------------------------------
    def helm_cmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.helm), "--kubeconfig", str(self.kubectl.kubeconfig), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=180)

    def install_chart(self) -> None:
        for ns in self.watch:
            self.kubectl("create", "namespace", ns, check=False)
        # no pods: the operator and the proxy run here as processes. With the node and the images imported
        # (make test's conformance and pod tiers), the chart's operator pods would outrank the local one in
        # Kopf peering (priorities from pod IPs) and it would never write.
        local = self.workdir / "local.json"
        local.write_text(json.dumps({"watch": {"namespaces": list(self.watch)},
                                     "operator": {"replicas": 0}, "proxy": {"replicas": 0}}))  # fmt: skip
        values = self.workdir / "values.json"
        values.write_text(json.dumps(self.values))
        self.helm_cmd(
            "upgrade", "--install", self.release, str(CHART), "--namespace", self.namespace,
            "--create-namespace", "--values", str(local), "--values", str(values),  # Helm merges them deeply
            "--force-conflicts",  # Helm 4 server-side-applies crds/; they may have come from kubectl apply
        )  # fmt: skip
        manifest = self.helm_cmd("get", "manifest", self.release, "--namespace", self.namespace).stdout
        self.manifests = [doc for doc in yaml.safe_load_all(manifest) if doc]

    def uninstall_chart(self) -> None:
        self.helm_cmd("uninstall", self.release, "--namespace", self.namespace, "--wait")

    def deployment(self, component: str) -> dict[str, Any]:
        for doc in self.manifests:
            labels = doc.get("metadata", {}).get("labels", {})
            if doc["kind"] == "Deployment" and labels.get("app.kubernetes.io/component") == component:
                return doc
        raise LookupError(f"the chart rendered no {component} Deployment")

    def container_args(self, component: str) -> list[str]:
        return list(self.deployment(component)["spec"]["template"]["spec"]["containers"][0]["args"])

    def token_kubectl(self, component: str) -> Kubectl:
        """A kubectl that authenticates as the chart's ServiceAccount of ``component``."""
        sa = self.deployment(component)["spec"]["template"]["spec"]["serviceAccountName"]
        token = self.kubectl("create", "token", sa, "-n", self.namespace, "--duration=2h").stdout.strip()
        directory = self.workdir / component
        directory.mkdir(parents=True, exist_ok=True)
        return self.kubectl.with_token(token, directory)

    # -- processes ---------------------------------------------------------------------------------------
    def start_upstream(self, name: str, port: int | None = None) -> int:
        port = port or _free_port()
        argv = [sys.executable, str(REPO / "tests" / "upstream_app.py"), "--name", name, "--port", str(port)]
        self.procs[f"upstream-{name}"] = spawn(f"upstream-{name}", argv, logs=self.workdir / "logs")
        wait_until(f"upstream {name}", lambda: http_get(f"http://127.0.0.1:{port}/__control")[0] == 200)
        return port

    def start_operator(self, *, priority: int = 100, name: str = "operator") -> Process:
        args = [a for a in self.container_args("operator") if not a.startswith(("--priority", "--liveness"))]
        kube = self.token_kubectl("operator")
        env = {"KUBECONFIG": str(kube.kubeconfig), "POD_NAMESPACE": self.namespace, "POD_ID": name}
        argv = [str(BIN / "graylane-operator"), *args, f"--priority={priority}"]
        proc = self.procs[name] = spawn(name, argv, logs=self.workdir / "logs", env=env)
        return proc

    def start_proxy(self, *, name: str = "proxy") -> tuple[int, int]:
        """The proxy with the chart's args on loopback ports; with the chart's HTTPS listener (tls.enabled)
        its port is ``self.tls_ports[name]``, and the 308s of redirectHTTP routes name that port."""
        port, admin = _free_port(), _free_port()
        chart = self.container_args("proxy")
        keep = [a for a in chart if not a.startswith(("--listen", "--admin-listen", "--https-redirect-port"))]
        kube = self.token_kubectl("proxy")
        argv = [
            str(BIN / "graylane-proxy"), *keep, f"--kubeconfig={kube.kubeconfig}",
            f"--listen=127.0.0.1:{port}", f"--admin-listen=127.0.0.1:{admin}", "--drain-delay=0",
        ]  # fmt: skip
        if any(a.startswith("--listen-tls") for a in chart):
            tls = self.tls_ports[name] = _free_port()
            argv += [f"--listen-tls=127.0.0.1:{tls}", f"--https-redirect-port={tls}"]
        self.procs[name] = spawn(name, argv, logs=self.workdir / "logs")
        wait_until("proxy /healthz", lambda: http_get(f"http://127.0.0.1:{admin}/healthz")[0] == 200)
        return port, admin

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs.clear()


def upstream_manifest(name: str, port: int, version: str, app: str = "checkout") -> dict[str, Any]:
    return {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "Upstream",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"url": f"http://127.0.0.1:{port}", "metadata": {"version": version}},
    }


def route_manifest(weight: float, *, host: str = "checkout.example.com") -> dict[str, Any]:
    """The README's route (examples/checkout/canaryroute.yaml) with the given weight."""
    route = yaml.safe_load((REPO / "examples" / "checkout" / "canaryroute.yaml").read_text())
    route["spec"]["weight"] = weight
    route["spec"]["hosts"] = [host]
    return dict(route)


@contextlib.contextmanager
def installed(stack: LocalStack, *, uninstall: bool = True) -> Iterator[LocalStack]:
    """The chart installed for the block; afterwards the processes stopped, the chart uninstalled (unless a
    test does it itself) and the tail of every log printed (pytest shows it when something failed)."""
    stack.install_chart()
    try:
        yield stack
    finally:
        stack.stop()
        if uninstall:
            stack.uninstall_chart()
        for log in sorted((stack.workdir / "logs").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def running(stack: LocalStack) -> Iterator[LocalStack]:
    try:
        yield stack
    finally:
        stack.stop()
