"""The product as pods on the real node, installed as users install it (``tests/pods`` and ``make demo``).

``PodStack`` imports the images built from ``deploy/docker/`` into the node, labels its namespaces Pod
Security ``restricted``, ``helm install``s the chart with its default values (only ``watch.namespaces`` set,
as every user sets it), runs the demo backends v1 and v2 as pods behind Services (reached by the routes as
``service:`` upstreams: cluster DNS and ClusterIP), and talks to the proxies the way a client on the node
does: through the proxy Service's ClusterIP. Waiting for pods never hangs: a pod that cannot start fails the
wait with its last log lines and events (``cluster.pods``).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import images as node_images
from cluster.controlplane import ControlPlane
from cluster.kubectl import Kubectl
from cluster.pods import wait_pods
from cluster.stack import CHART, REPO, http_get, wait_until

RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
BACKEND_IMAGE = "graylane/graylane-demo-backend"
BACKEND_PORT = 8080
HOST = "checkout.example.com"


def build_images() -> tuple[str, dict[str, Path]]:
    """Build (or reuse) the images of ``deploy/docker/``, as ``make images`` does: (tag, {ref: archive})."""
    sys.path.insert(0, str(REPO / "deploy"))
    from images.build import app_version, ensure_images

    return app_version(), ensure_images()


def ensure_node_images(plane: ControlPlane) -> str:
    """Build (or reuse) the images and import them into the node's containerd; returns their tag."""
    tag, archives = build_images()
    started = time.monotonic()
    node_images.import_archives(state_dir=plane.state_dir, archives=list(archives.values()))
    print(
        f"pods: {len(archives)} images imported into the node ({time.monotonic() - started:.1f}s)", flush=True
    )
    return tag


def restricted_namespace(kubectl: Kubectl, name: str) -> None:
    """Create ``name`` (if needed) enforcing Pod Security ``restricted``."""
    kubectl("create", "namespace", name, check=False)
    kubectl("label", "namespace", name, "--overwrite", *(f"{k}={v}" for k, v in RESTRICTED.items()))


def restricted_container() -> dict[str, Any]:
    """The securityContext every container here gets (what ``restricted`` demands, and read-only root)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def backend_manifests(version: str, *, tag: str, replicas: int = 1) -> list[dict[str, Any]]:
    """The demo backend ``version`` (``tests/upstream_app.py`` in its image) as a Deployment and a Service."""
    name = f"checkout-{version}"
    labels = {"app": "checkout", "version": version}
    container = {
        "name": "app",
        "image": f"{BACKEND_IMAGE}:{tag}",
        "imagePullPolicy": "Never",  # built here; a missing image is ErrImageNeverPull, never a pull
        "args": ["--name", version],
        "ports": [{"name": "http", "containerPort": BACKEND_PORT}],
        "readinessProbe": {"httpGet": {"path": "/__control", "port": "http"}, "periodSeconds": 2},
        "securityContext": restricted_container(),
        "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "128Mi"}},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": BACKEND_PORT, "targetPort": "http"}]},
    }
    return [deployment, service]


def service_upstream(version: str) -> dict[str, Any]:
    """An Upstream that names the backend's Service (compiled to ``http://<svc>.<ns>.svc:<port>``)."""
    return {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "Upstream",
        "metadata": {"name": f"checkout-{version}", "labels": {"app": "checkout"}},
        "spec": {
            "service": {"name": f"checkout-{version}", "port": BACKEND_PORT},
            "metadata": {"version": version},
        },
    }


@dataclass
class PodStack:
    kubectl: Kubectl  # admin
    helm: Path
    workdir: Path
    tag: str
    release: str = "graylane"
    namespace: str = "graylane-system"
    apps: str = "shop"

    # -- install -----------------------------------------------------------------------------------------
    def helm_cmd(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.helm), "--kubeconfig", str(self.kubectl.kubeconfig), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout)

    def install(self, *, timeout: float = 300) -> None:
        """``helm install`` with the default values, then wait until the chart's four pods are Ready."""
        restricted_namespace(self.kubectl, self.namespace)
        restricted_namespace(self.kubectl, self.apps)
        values = self.workdir / "values.json"
        values.write_text(json.dumps({"watch": {"namespaces": [self.apps]}}))
        self.helm_cmd(
            "upgrade", "--install", self.release, str(CHART), "--namespace", self.namespace,
            "--values", str(values), "--force-conflicts",
        )  # fmt: skip
        for component in ("operator", "proxy"):
            wait_pods(self.kubectl, self.namespace, self.selector(component), timeout=timeout)

    def uninstall(self) -> None:
        self.helm_cmd("uninstall", self.release, "--namespace", self.namespace, "--wait")

    def selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component={component}"

    def deploy_backends(self, *versions: str, timeout: float = 180) -> None:
        manifests = [m for v in versions for m in backend_manifests(v, tag=self.tag)]
        self.kubectl.apply(manifests, "-n", self.apps)
        for version in versions:
            wait_pods(self.kubectl, self.apps, f"app=checkout,version={version}", timeout=timeout)

    # -- addresses ---------------------------------------------------------------------------------------
    def cluster_ip(self, service: str, namespace: str | None = None) -> str:
        svc = self.kubectl.json("get", "service", service, "-n", namespace or self.namespace)
        return str(svc["spec"]["clusterIP"])

    @property
    def proxy_address(self) -> tuple[str, int]:
        """The proxy Service (ClusterIP, port 80): where clients on the node send their requests."""
        return self.cluster_ip(f"{self.release}-proxy"), 80

    def backend_url(self, version: str) -> str:
        return f"http://{self.cluster_ip(f'checkout-{version}', self.apps)}:{BACKEND_PORT}"

    def pods(self, component: str) -> list[dict[str, Any]]:
        items = self.kubectl.json("get", "pods", "-n", self.namespace, "-l", self.selector(component))[
            "items"
        ]
        return list(items)

    def ready_proxy_ips(self) -> list[str]:
        return [p["status"]["podIP"] for p in self.pods("proxy") if pod_ready(p) and not _terminating(p)]

    def served_weights(self, route: str) -> list[float | None]:
        """The weight each Ready proxy pod serves for ``route`` (``ns/name``), from its own ``/routes``."""
        return [_served_weight(ip, route) for ip in self.ready_proxy_ips()]

    def wait_weight(self, route: str, weight: float, *, timeout: float = 60, every: float = 0.02) -> float:
        """Seconds until every Ready proxy pod serves ``weight`` for ``route``."""
        started = time.monotonic()
        wait_until(
            f"weight {weight} on every proxy pod",
            lambda: (w := self.served_weights(route)) and all(x == weight for x in w),
            timeout=timeout,
            every=every,
        )
        return time.monotonic() - started

    def get(self, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        host, port = self.proxy_address
        return http_get(f"http://{host}:{port}{path}", {"Host": HOST} | (headers or {}))


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _terminating(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _served_weight(ip: str, route: str) -> float | None:
    status, body = http_get(f"http://{ip}:9090/routes", timeout=2)
    routes = json.loads(body)["routes"] if status == 200 else []
    return next((r["weight"] for r in routes if r["route"] == route and r["serving"]), None)


@dataclass
class SteadyLoad:
    """A client that sends requests back to back on a keep-alive connection to (host, port), as a real one
    does: it reconnects when an answer says ``Connection: close``. Every request that does not end in a 200
    is counted as lost, with why."""

    host: str
    port: int
    headers: dict[str, str] = field(default_factory=lambda: {"Host": HOST})
    max_requests: int = 200_000
    ok: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyLoad:
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wait_for(self, count: int, *, timeout: float = 60) -> None:
        """Block until ``count`` more requests were answered (the load is really flowing)."""
        target = self.ok + count
        wait_until(f"{count} answered requests", lambda: self.ok >= target, timeout=timeout, every=0.05)

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        for _ in range(self.max_requests):
            if self._stop.is_set():
                break
            try:
                conn.request("GET", "/", headers=self.headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.lost[type(exc).__name__] += 1
                conn.close()
                continue
            if response.status == 200:
                self.ok += 1
                self.versions[body.decode().strip()] += 1
            else:
                self.lost[f"HTTP {response.status}"] += 1
        conn.close()
