"""`helm install` the chart into the real test control plane: objects, RBAC as the API server enforces it,
Pod Security admission under enforce=restricted, and an uninstall that leaves only the CRDs.

The test control plane has no scheduler or kubelet (and may not run the Deployment controller), so pods never
run here. Pod Security acceptance is proven by a server-side dry-run create of a Pod built from each rendered
pod template, in a namespace labelled pod-security.kubernetes.io/enforce=restricted, next to a deliberately
non-compliant Pod that the same admission must reject.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_render import CHART_DIR, RELEASE
from cluster.kubectl import Kubectl

OPERATOR_SA = f"{RELEASE}-graylane-operator"
PROXY_SA = f"{RELEASE}-graylane-proxy"
PSS_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def _helm(helm: Path, kubeconfig: Path, home: Path, *args: str) -> str:
    env = os.environ | {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    proc = subprocess.run(
        [str(helm), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}{proc.stdout}"
    return proc.stdout + proc.stderr


class Installed:
    """The chart installed into `system` (watching `team`), with HS* JWT secret mirroring enabled."""

    def __init__(self, kubectl: Kubectl, helm: Path, home: Path) -> None:
        self.kubectl, self.helm, self.home = kubectl, helm, home
        suffix = uuid.uuid4().hex[:6]
        self.system, self.team, self.other = f"gl-sys-{suffix}", f"gl-team-{suffix}", f"gl-other-{suffix}"
        self.install_output = ""

    def namespaces(self) -> list[str]:
        return [self.system, self.team, self.other]

    def helm_run(self, *args: str) -> str:
        return _helm(self.helm, self.kubectl.kubeconfig, self.home, *args)

    def install(self) -> None:
        for ns in self.namespaces():
            self.kubectl.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": PSS_LABELS}}
            )
        values = self.home / "values.yaml"
        values.write_text(
            yaml.safe_dump({"watch": {"namespaces": [self.team]}, "jwtSecrets": {"enabled": True}})
        )
        # Helm 4 server-side-applies crds/ even when they exist; other suites in the same session may have
        # applied deploy/crds/ with kubectl (same content, the drift test guarantees it), so take ownership.
        self.install_output = self.helm_run(
            "install", RELEASE, str(CHART_DIR), "-n", self.system, "-f", str(values), "--force-conflicts"
        )

    def can(self, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
        scope = ["-n", namespace] if namespace else ["--all-namespaces"]
        who = f"system:serviceaccount:{self.system}:{sa}"
        result = self.kubectl("auth", "can-i", verb, resource, "--as", who, *scope, check=False)
        assert result.stdout.strip() in {"yes", "no"}, result.stderr
        return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def installed(
    kubectl: Kubectl, helm_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    inst = Installed(kubectl, helm_bin, tmp_path_factory.mktemp("helm-home"))
    inst.install()
    yield inst
    inst.helm_run("uninstall", RELEASE, "-n", inst.system, "--ignore-not-found")
    for ns in inst.namespaces():
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def _names(kubectl: Kubectl, kind: str, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in kubectl.json("get", kind, "-n", namespace)["items"]}


def test_install_creates_the_objects(installed: Installed) -> None:
    k, sys_ns, team = installed.kubectl, installed.system, installed.team
    assert "NOTES:" in installed.install_output and f"kubectl apply -n {team}" in installed.install_output
    assert "would violate PodSecurity" not in installed.install_output
    assert _names(k, "serviceaccounts", sys_ns) >= {OPERATOR_SA, PROXY_SA}
    assert _names(k, "services", sys_ns) == {PROXY_SA, f"{PROXY_SA}-admin"}
    assert _names(k, "deployments.apps", sys_ns) == {OPERATOR_SA, PROXY_SA}
    assert _names(k, "poddisruptionbudgets.policy", sys_ns) == {OPERATOR_SA, PROXY_SA}
    assert _names(k, "roles.rbac.authorization.k8s.io", sys_ns) == {f"{OPERATOR_SA}-config", PROXY_SA}
    assert _names(k, "rolebindings.rbac.authorization.k8s.io", sys_ns) == {f"{OPERATOR_SA}-config", PROXY_SA}
    assert _names(k, "roles.rbac.authorization.k8s.io", team) == {f"{OPERATOR_SA}-watch"}
    assert _names(k, "rolebindings.rbac.authorization.k8s.io", team) == {f"{OPERATOR_SA}-watch"}
    assert _names(k, "kopfpeerings.kopf.dev", team) == {"graylane"}
    crds = {o["metadata"]["name"] for o in k.json("get", "customresourcedefinitions")["items"]}
    assert crds >= {"canaryroutes.graylane.io", "upstreams.graylane.io", "trafficpolicies.graylane.io",
                    "kopfpeerings.kopf.dev"}  # fmt: skip
    bindings = k.json("get", "clusterrolebindings")["items"]
    assert not [
        b for b in bindings if b["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == RELEASE
    ]


@pytest.mark.parametrize(
    ("sa", "verb", "resource", "where", "allowed"),
    [
        # the proxy: read route ConfigMaps and mirrored Secrets in the install namespace, nothing else
        (PROXY_SA, "list", "configmaps", "system", True),
        (PROXY_SA, "watch", "configmaps", "system", True),
        (PROXY_SA, "watch", "secrets", "system", True),
        (PROXY_SA, "create", "configmaps", "system", False),
        (PROXY_SA, "patch", "configmaps", "system", False),
        (PROXY_SA, "list", "configmaps", "team", False),
        (PROXY_SA, "list", "configmaps", None, False),
        (PROXY_SA, "list", "canaryroutes.graylane.io", "team", False),
        (PROXY_SA, "list", "pods", "system", False),
        # the operator: its CRs in the watched namespace only, route ConfigMaps in the install namespace only
        (OPERATOR_SA, "watch", "canaryroutes.graylane.io", "team", True),
        (OPERATOR_SA, "patch", "canaryroutes.graylane.io/status", "team", True),
        (OPERATOR_SA, "patch", "upstreams.graylane.io", "team", True),
        (OPERATOR_SA, "create", "events", "team", True),
        (OPERATOR_SA, "get", "secrets", "team", True),
        (OPERATOR_SA, "list", "secrets", "team", False),
        (OPERATOR_SA, "watch", "canaryroutes.graylane.io", "other", False),
        (OPERATOR_SA, "list", "canaryroutes.graylane.io", None, False),
        (OPERATOR_SA, "get", "secrets", "other", False),
        (OPERATOR_SA, "create", "configmaps", "system", True),
        (OPERATOR_SA, "delete", "configmaps", "system", True),
        (OPERATOR_SA, "create", "configmaps", "team", False),
        (OPERATOR_SA, "create", "secrets", "system", True),
        (OPERATOR_SA, "delete", "canaryroutes.graylane.io", "team", False),
        (OPERATOR_SA, "create", "pods", "system", False),
        (OPERATOR_SA, "list", "endpointslices.discovery.k8s.io", "system", True),
        (OPERATOR_SA, "list", "endpointslices.discovery.k8s.io", "team", False),
        (OPERATOR_SA, "create", "endpointslices.discovery.k8s.io", "system", False),
        (OPERATOR_SA, "patch", "kopfpeerings.kopf.dev/graylane", "team", True),
        (OPERATOR_SA, "patch", "kopfpeerings.kopf.dev/someone-else", "team", False),
        # TrafficPolicies are the Gateway controller's (gatewayAPI.enabled, off here): no right on them
        (OPERATOR_SA, "list", "trafficpolicies.graylane.io", "team", False),
        (OPERATOR_SA, "patch", "trafficpolicies.graylane.io/status", "team", False),
    ],
)
def test_the_api_server_enforces_least_privilege(
    installed: Installed, sa: str, verb: str, resource: str, where: str | None, allowed: bool
) -> None:
    namespace = getattr(installed, where) if where else None
    assert installed.can(sa, verb, resource, namespace) is allowed


def test_a_proxy_token_really_cannot_write(installed: Installed) -> None:
    token = installed.kubectl("create", "token", PROXY_SA, "-n", installed.system).stdout.strip()
    as_proxy = installed.kubectl.with_token(token)
    listed = as_proxy.json("get", "configmaps", "-n", installed.system)
    assert listed["kind"] == "List" or listed["kind"] == "ConfigMapList"
    refused = as_proxy("create", "configmap", "forged", "-n", installed.system, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()


def _pod_from(deployment: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


def _dry_run_create(kubectl: Kubectl, pod: dict[str, Any]) -> Any:
    return kubectl("create", "--dry-run=server", "-f", "-", "-o", "json", input=json.dumps(pod), check=False)


@pytest.mark.parametrize("component", ["operator", "proxy"])
def test_pod_security_admission_accepts_the_pods(installed: Installed, component: str) -> None:
    k, ns = installed.kubectl, installed.system
    labels = k.json("get", "namespace", ns)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = k.json("get", "deployment", f"{RELEASE}-graylane-{component}", "-n", ns)
    accepted = _dry_run_create(k, _pod_from(deployment, ns, f"pss-{component}"))
    assert accepted.returncode == 0, accepted.stderr
    assert "violate" not in accepted.stderr
    assert json.loads(accepted.stdout)["spec"]["securityContext"]["runAsNonRoot"] is True
    # the same admission rejects the pod once one restricted control is broken: it is really enforcing
    broken = _pod_from(deployment, ns, f"pss-{component}-broken")
    broken["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    rejected = _dry_run_create(k, broken)
    assert rejected.returncode != 0 and "violates PodSecurity" in rejected.stderr


def test_upgrade_moves_the_rights_with_the_watched_namespaces(installed: Installed) -> None:
    k, other = installed.kubectl, installed.other
    assert not installed.can(OPERATOR_SA, "watch", "canaryroutes.graylane.io", other)
    values = installed.home / "values-upgrade.yaml"
    values.write_text(yaml.safe_dump({"watch": {"namespaces": [installed.team, other]}}))
    installed.helm_run("upgrade", RELEASE, str(CHART_DIR), "-n", installed.system, "-f", str(values))
    assert installed.can(OPERATOR_SA, "watch", "canaryroutes.graylane.io", other)
    assert _names(k, "kopfpeerings.kopf.dev", other) == {"graylane"}
    assert not installed.can(OPERATOR_SA, "get", "secrets", installed.team)  # jwtSecrets now off
    assert not installed.can(PROXY_SA, "watch", "secrets", installed.system)
    deployment = k.json("get", "deployment", OPERATOR_SA, "-n", installed.system)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == [
        f"--namespace={installed.team}",
        f"--namespace={other}",
    ]
    assert "--mirror-jwt-secrets" not in args


def test_uninstall_leaves_only_the_crds(installed: Installed) -> None:
    k = installed.kubectl
    installed.helm_run("uninstall", RELEASE, "-n", installed.system, "--wait")
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/part-of=graylane"
    kinds = (
        "deployments.apps,services,serviceaccounts,poddisruptionbudgets.policy,"
        "roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,kopfpeerings.kopf.dev,"
        "horizontalpodautoscalers.autoscaling,configmaps,secrets"
    )
    for ns in installed.namespaces():
        assert k.json("get", kinds, "-n", ns, "-l", selector)["items"] == []
    cluster_kinds = "clusterroles.rbac.authorization.k8s.io,clusterrolebindings.rbac.authorization.k8s.io"
    assert k.json("get", cluster_kinds, "-l", selector)["items"] == []
    releases = installed.helm_run("list", "-n", installed.system, "-q")
    assert RELEASE not in releases.split()
    crds = {o["metadata"]["name"] for o in k.json("get", "customresourcedefinitions")["items"]}
    assert {"canaryroutes.graylane.io", "upstreams.graylane.io", "kopfpeerings.kopf.dev"} <= crds


def test_all_namespaces_mode_uses_one_cluster_role(kubectl: Kubectl, helm_bin: Path, tmp_path: Path) -> None:
    """A second release in all-namespaces mode: the operator gets its ClusterRole, the proxy still nothing
    cluster-wide, and uninstalling removes the cluster-scoped objects too."""
    inst = Installed(kubectl, helm_bin, tmp_path)
    release = "glall"
    kubectl.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": inst.system, "labels": PSS_LABELS}}
    )
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"watch": {"allNamespaces": True}, "operator": {"peering": {"name": "glall"}}})
    )
    try:
        inst.helm_run(
            "install", release, str(CHART_DIR), "-n", inst.system, "-f", str(values), "--force-conflicts"
        )
        operator, proxy = f"{release}-graylane-operator", f"{release}-graylane-proxy"
        assert inst.can(operator, "watch", "canaryroutes.graylane.io", None)
        assert inst.can(operator, "patch", "upstreams.graylane.io/status", inst.team)
        assert inst.can(operator, "patch", "clusterkopfpeerings.kopf.dev/glall", None)
        assert not inst.can(operator, "patch", "clusterkopfpeerings.kopf.dev/other", None)
        assert not inst.can(operator, "get", "secrets", inst.team)  # jwtSecrets off
        assert not inst.can(operator, "create", "configmaps", inst.team)
        assert inst.can(proxy, "watch", "configmaps", inst.system)
        assert not inst.can(proxy, "list", "configmaps", None)
        assert kubectl.json("get", "clusterkopfpeering", "glall")["metadata"]["name"] == "glall"
    finally:
        inst.helm_run("uninstall", release, "-n", inst.system, "--wait", "--ignore-not-found")
        kubectl("delete", "namespace", inst.system, "--wait=false", "--ignore-not-found", check=False)
    selector = f"app.kubernetes.io/instance={release}"
    kinds = "clusterroles.rbac.authorization.k8s.io,clusterrolebindings.rbac.authorization.k8s.io"
    assert kubectl.json("get", kinds, "-l", selector)["items"] == []
    assert kubectl("get", "clusterkopfpeering", "glall", check=False).returncode != 0
