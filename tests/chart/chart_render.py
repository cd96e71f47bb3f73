"""Render the Graylane chart with the real helm binary and index the resulting objects (test helper)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "deploy" / "helm" / "graylane"
RELEASE = "gl"
RELEASE_NAMESPACE = "graylane-system"

Obj = dict[str, Any]

# Value sets every static test runs over: the defaults and the production-shaped variations.
SCENARIOS: dict[str, Obj] = {
    "default": {},
    "namespaced-jwt-hpa-monitor": {
        "watch": {"namespaces": ["team-a", "team-b"]},
        "jwtSecrets": {"enabled": True},
        "operator": {"extraArgs": ["--verbose"], "podLabels": {"team": "platform"}},
        "proxy": {
            "workers": 4,
            "trustedProxies": ["10.0.0.0/8", "2001:db8::/32"],
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12},
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "service": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "loadBalancerSourceRanges": ["203.0.113.0/24"],
            },
            "drainDelaySeconds": 0,
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "networkPolicy": {
                "enabled": True,
                "adminFrom": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                ],
            },
        },
        "imagePullSecrets": [{"name": "regcred"}],
    },
    "all-namespaces": {
        "watch": {"allNamespaces": True},
        "jwtSecrets": {"enabled": True},
        "operator": {"watchCRDs": True, "replicas": 3},
        "proxy": {"replicas": 5, "drainTimeoutSeconds": 50, "terminationGracePeriodSeconds": 70},
    },
    "single-replicas": {"operator": {"replicas": 1}, "proxy": {"replicas": 1}},
    "gateway-api": {"gatewayAPI": {"enabled": True}, "proxy": {"trustedProxies": ["10.0.0.0/8"]}},
    "tls-networkpolicy": {
        "watch": {"namespaces": ["team-a"]},
        "tls": {"enabled": True},
        "proxy": {
            "tls": {"port": 9443, "defaultSecret": "graylane-default-tls"},
            "service": {"tlsPort": 8443},
            "networkPolicy": {"enabled": True},
        },
    },
    "all-namespaces-tls": {"watch": {"allNamespaces": True}, "tls": {"enabled": True}},
}


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""


def run_helm(helm: Path, *args: str) -> str:
    proc = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def values_file(tmp: Path, values: Mapping[str, Any]) -> Path:
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return path


def render(
    helm: Path,
    tmp: Path,
    values: Mapping[str, Any],
    *,
    namespace: str = RELEASE_NAMESPACE,
    crds: bool = False,
) -> list[Obj]:
    args = ["template", RELEASE, str(CHART_DIR), "-n", namespace, "-f", str(values_file(tmp, values))]
    if crds:
        args.append("--include-crds")
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args)) if doc]


@dataclass(frozen=True)
class Manifests:
    """Rendered objects with the lookups the tests need."""

    objects: tuple[Obj, ...]
    namespace: str = RELEASE_NAMESPACE

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] in kinds]

    def named(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        for o in self.of_kind(kind):
            meta = o["metadata"]
            if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
                return o
        raise KeyError(f"no {kind} {namespace or '*'}/{name} among the rendered objects")

    def deployment(self, component: str) -> Obj:
        return self.named("Deployment", f"{RELEASE}-graylane-{component}")

    def pod_specs(self) -> Iterator[tuple[str, Obj]]:
        """(object name, pod spec) for every workload that creates pods."""
        for o in self.objects:
            if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
                yield o["metadata"]["name"], o["spec"]["template"]["spec"]
            elif o["kind"] == "Pod":
                yield o["metadata"]["name"], o["spec"]

    def bound_service_accounts(self, role_kind: str, role_name: str) -> set[str]:
        """ServiceAccount names bound to a Role/ClusterRole by any binding."""
        names = set()
        for b in self.of_kind("RoleBinding", "ClusterRoleBinding"):
            if b["roleRef"]["kind"] == role_kind and b["roleRef"]["name"] == role_name:
                names |= {s["name"] for s in b.get("subjects", []) if s["kind"] == "ServiceAccount"}
        return names
