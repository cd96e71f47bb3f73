"""``graylane import ingress-nginx`` against the real kube-apiserver with the real kubectl: ``--from-cluster``
reads the Ingresses (and the Services, for named ports) through the API, and what the import writes -- for
every row of the canary behaviour table, the README example and a sticky variant -- passes ``kubectl apply
--dry-run=server`` against the CRDs as shipped, then applies for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from canary_cases import CASES
from cluster.kubectl import Kubectl
from ingress_manifests import canary, dump, ingress, pair

ROOT = Path(__file__).resolve().parents[2]
GRAYLANE = Path(sys.executable).with_name("graylane")


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(ROOT / "deploy" / "crds"))
    crd_names = ("crd/canaryroutes.graylane.io", "crd/upstreams.graylane.io")
    kubectl("wait", "--for=condition=Established", *crd_names, "--timeout=60s")


def graylane(kubectl: Kubectl, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECTL": str(kubectl.binary), "KUBECONFIG": str(kubectl.kubeconfig)}
    return subprocess.run([str(GRAYLANE), *args], input=stdin, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def routes_in(directory: Path) -> dict[str, dict[str, Any]]:
    docs = [d for p in sorted(directory.iterdir()) for d in yaml.safe_load_all(p.read_text())]
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "CanaryRoute"}


def service(name: str, namespace: str, ports: dict[str, int]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": n, "port": p} for n, p in ports.items()]}}  # fmt: skip


def test_from_cluster_reads_the_ingresses_through_the_api(
    kubectl: Kubectl, k8s_namespace: str, crds: None, tmp_path: Path
) -> None:
    ns = k8s_namespace
    objects = [
        ingress("checkout", "checkout-v1", namespace=ns),
        canary("checkout-canary", "checkout-v2", {"canary-by-header": "X-Canary", "canary-weight": "5"},
               namespace=ns, port="http"),
        service("checkout-v2", ns, {"metrics": 9090, "http": 8081}),
        ingress("blog", "blog", namespace=ns, host="blog.example.com"),
    ]  # fmt: skip
    kubectl.apply(objects)
    out = tmp_path / "out"
    result = graylane(kubectl, "import", "ingress-nginx", "--from-cluster", "-n", ns, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"note: Ingress {ns}/blog: no canary Ingress: not imported" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(f"summary: 1 route written to {out}")
    route = routes_in(out)["checkout"]
    assert route["metadata"]["namespace"] == ns
    assert route["spec"]["weight"] == 5 and [r["name"] for r in route["spec"]["rules"]] == [
        "header-always", "header-never"]  # fmt: skip
    upstreams = [
        d for d in yaml.safe_load_all((out / f"{ns}.checkout.yaml").read_text()) if d["kind"] == "Upstream"
    ]
    assert upstreams[1]["spec"]["service"] == {
        "name": "checkout-v2",
        "port": 8081,
    }  # the named port, resolved
    kubectl("apply", "--dry-run=server", "-f", str(out))
    kubectl("apply", "-f", str(out))
    assert kubectl.json("get", "canaryroutes.graylane.io", "checkout", "-n", ns)["spec"] == route["spec"]


def test_from_cluster_other_namespace_sees_nothing(
    kubectl: Kubectl, k8s_namespace: str, tmp_path: Path
) -> None:
    # a host of its own: -A also reads what other tests left in their namespaces
    kubectl.apply(pair({"canary-weight": "5"}, namespace=k8s_namespace, host=f"{k8s_namespace}.example.com"))
    result = graylane(
        kubectl, "import", "ingress-nginx", "--from-cluster", "-n", "default", "-o", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert not any(p.name.startswith(k8s_namespace) for p in tmp_path.iterdir())
    everywhere = graylane(
        kubectl, "import", "ingress-nginx", "--from-cluster", "-A", "-o", str(tmp_path / "a")
    )
    assert everywhere.returncode == 0, everywhere.stderr
    assert (tmp_path / "a" / f"{k8s_namespace}.checkout.yaml").is_file()


def test_the_api_server_accepts_every_imported_route(
    kubectl: Kubectl, k8s_namespace: str, crds: None, tmp_path: Path
) -> None:
    """Every row of the behaviour table and the README example (moved into the test namespace)."""
    objects = list(yaml.safe_load_all((ROOT / "examples" / "ingress-nginx" / "checkout.yaml").read_text()))
    for obj in objects:
        obj["metadata"]["namespace"] = k8s_namespace
    for i, case in enumerate(CASES):
        for obj in pair(case.annotations, namespace=None, host=f"case-{i}.example.com"):
            obj["metadata"]["name"] = f"{obj['metadata']['name']}-{i}"
            objects.append(obj)
    for sticky in ([], ["--sticky", "header:X-User-Id"]):
        out = tmp_path / f"out{len(sticky)}"
        result = graylane(kubectl, "import", "ingress-nginx", "-f", "-", "-n", k8s_namespace, "-o", str(out),
                          *sticky, stdin=dump(objects))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert len(routes_in(out)) == len(CASES) + 1
        kubectl("apply", "--dry-run=server", "-n", k8s_namespace, "-f", str(out))
    kubectl("apply", "-n", k8s_namespace, "-f", str(out))
    listed = kubectl.json("get", "canaryroutes.graylane.io", "-n", k8s_namespace)["items"]
    assert sorted(r["metadata"]["name"] for r in listed) == sorted(routes_in(out))


def test_reading_ingresses_is_enough(kubectl: Kubectl, k8s_namespace: str, tmp_path: Path) -> None:
    """A ServiceAccount that may list Ingresses but not Services still imports (named ports aside)."""
    ns = k8s_namespace
    kubectl.apply(pair({"canary-weight": "5"}, namespace=ns, host=f"{ns}.example.com"))
    kubectl("create", "serviceaccount", "migrator", "-n", ns)
    kubectl("create", "role", "read-ingresses", "--verb=get,list", "--resource=ingresses.networking.k8s.io",
            "-n", ns)  # fmt: skip
    kubectl("create", "rolebinding", "migrator", "--role=read-ingresses", f"--serviceaccount={ns}:migrator",
            "-n", ns)  # fmt: skip
    reader = kubectl.with_token(kubectl("create", "token", "migrator", "-n", ns).stdout.strip(), tmp_path)
    result = graylane(
        reader, "import", "ingress-nginx", "--from-cluster", "-n", ns, "-o", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("note: cannot list Services, so named ports cannot be resolved:")
    assert "forbidden" in result.stderr
    assert (tmp_path / "o" / f"{ns}.checkout.yaml").is_file()
