"""Proof that the test cluster is a real Kubernetes: every assertion is the API server's own answer.

Runs against the local control plane, or any cluster given by GRAYLANE_TEST_KUBECONFIG.
"""

from __future__ import annotations

import json
import queue
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import eventually

from cluster.kubectl import Kubectl

GROUP = "clustertest.graylane.invalid"
CRD_NAME = f"widgets.{GROUP}"
API = f"{GROUP}/v1"
GC_DEADLINE = 150.0  # the garbage collector rediscovers resource types every ~30 s

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                    "color": {"type": "string", "enum": ["red", "green"]},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "!has(self.minReplicas) || self.minReplicas <= self.replicas",
                                        "message": "minReplicas must not exceed replicas",
                                    }
                                ],
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}, "observed": {"type": "integer"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1} | spec,
    }


def gone(kubectl: Kubectl, *args: str) -> bool:
    result = kubectl("get", *args, check=False)
    if result.returncode == 0:
        return False
    assert "NotFound" in result.stderr, result.stderr
    return True


@pytest.fixture(scope="module")
def crd(kubectl: Kubectl) -> Iterator[dict[str, Any]]:
    kubectl.apply(CRD)
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    yield kubectl.json("get", "crd", CRD_NAME)
    kubectl("delete", "crd", CRD_NAME, "--wait=false", "--ignore-not-found", check=False)


def test_crd_with_schema_and_cel_rule_is_established(crd: dict[str, Any], kubectl: Kubectl) -> None:
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    resources = kubectl("api-resources", f"--api-group={GROUP}", "-o", "name").stdout.split()
    assert resources == [CRD_NAME]


def test_schema_violation_is_rejected(crd: dict[str, Any], kubectl: Kubectl, k8s_namespace: str) -> None:
    result = kubectl(
        "create", "-f", "-", input=json.dumps(widget("big", k8s_namespace, replicas=20)), check=False
    )
    assert result.returncode != 0
    assert "spec.replicas: Invalid value: 20" in result.stderr
    assert "should be less than or equal to 10" in result.stderr
    assert gone(kubectl, "widget", "big", "-n", k8s_namespace)


def test_cel_rule_violation_is_rejected(crd: dict[str, Any], kubectl: Kubectl, k8s_namespace: str) -> None:
    bad = widget("inverted", k8s_namespace, replicas=2, minReplicas=5)
    result = kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "minReplicas must not exceed replicas" in result.stderr
    assert "spec: Invalid value" in result.stderr
    assert gone(kubectl, "widget", "inverted", "-n", k8s_namespace)
    kubectl("create", "-f", "-", input=json.dumps(widget("fine", k8s_namespace, replicas=5, minReplicas=5)))


def test_unknown_fields_are_pruned_or_rejected_when_strict(
    crd: dict[str, Any], kubectl: Kubectl, k8s_namespace: str
) -> None:
    body = widget("extra", k8s_namespace, colour="blue") | {"topLevel": "x"}
    strict = kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(body), check=False)
    assert strict.returncode != 0
    assert 'unknown field "spec.colour"' in strict.stderr
    created = kubectl.json("create", "--validate=false", "-f", "-", input=json.dumps(body))
    assert created["spec"] == {"replicas": 1}
    assert "topLevel" not in created
    stored = kubectl.json("get", "widget", "extra", "-n", k8s_namespace)
    assert stored["spec"] == {"replicas": 1}
    assert "topLevel" not in stored


def test_configmap_owned_by_custom_resource_is_garbage_collected(
    crd: dict[str, Any], kubectl: Kubectl, k8s_namespace: str
) -> None:
    owner = kubectl.json("create", "-f", "-", input=json.dumps(widget("owner", k8s_namespace)))
    ref = {"apiVersion": API, "kind": "Widget", "name": "owner", "uid": owner["metadata"]["uid"]}
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": k8s_namespace,
            "ownerReferences": [ref | {"controller": True}],
        },
        "data": {"k": "v"},
    }
    bystander = child | {"metadata": {"name": "bystander", "namespace": k8s_namespace}}
    kubectl.apply([child, bystander])
    kubectl("delete", "widget", "owner", "-n", k8s_namespace)
    eventually(
        lambda: gone(kubectl, "configmap", "child", "-n", k8s_namespace),
        within=GC_DEADLINE,
        what="the garbage collector deletes the ConfigMap owned by the deleted Widget",
    )
    assert kubectl.json("get", "configmap", "bystander", "-n", k8s_namespace)["data"] == {"k": "v"}


def test_deleted_namespace_disappears(kubectl: Kubectl) -> None:
    name = f"doomed-{time.monotonic_ns() % 10**9}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "content", "-n", name, "--from-literal=k=v")
    kubectl("delete", "namespace", name, "--wait=false")
    eventually(
        lambda: gone(kubectl, "namespace", name),
        within=GC_DEADLINE,
        what=f"namespace {name} is finalised and removed",
    )


def _urlopen_as(kubectl: Kubectl, token: str, path: str) -> tuple[int, dict[str, Any]]:
    server, cluster = kubectl.cluster_info()
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl._create_unverified_context()
    else:
        ca = b64decode(cluster["certificate-authority-data"]).decode()
        context = ssl.create_default_context(cadata=ca)
    request = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_serviceaccount_token_with_role_allows_and_forbids(
    kubectl: Kubectl, k8s_namespace: str, tmp_path: Path
) -> None:
    ns = k8s_namespace
    kubectl("create", "serviceaccount", "reader", "-n", ns)
    kubectl("create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", ns)
    kubectl("create", "rolebinding", "reader", "--role=cm-reader", f"--serviceaccount={ns}:reader", "-n", ns)
    kubectl("create", "configmap", "visible", "-n", ns, "--from-literal=k=v")
    token = kubectl("create", "token", "reader", "-n", ns, "--duration=10m").stdout.strip()
    as_sa = kubectl.with_token(token, tmp_path)

    who = as_sa.json("auth", "whoami")
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:reader"
    names = {cm["metadata"]["name"] for cm in as_sa.json("get", "configmaps", "-n", ns)["items"]}
    assert "visible" in names
    denied = as_sa("get", "secrets", "-n", ns, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f'User "system:serviceaccount:{ns}:reader" cannot list resource "secrets"' in denied.stderr

    code, body = _urlopen_as(kubectl, token, f"/api/v1/namespaces/{ns}/configmaps/visible")
    assert (code, body["data"]) == (200, {"k": "v"})
    code, body = _urlopen_as(kubectl, token, f"/api/v1/namespaces/{ns}/secrets")
    assert code == 403
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)


def test_merge_patch_on_custom_resource_and_status(
    crd: dict[str, Any], kubectl: Kubectl, k8s_namespace: str
) -> None:
    ns = k8s_namespace
    created = kubectl.json("create", "-f", "-", input=json.dumps(widget("w", ns)))
    assert created["metadata"]["generation"] == 1

    patched = kubectl.json(
        "patch", "widget", "w", "-n", ns, "--type=merge", "-p", '{"spec":{"color":"green"}}'
    )
    assert patched["spec"] == {"replicas": 1, "color": "green"}
    assert patched["metadata"]["generation"] == 2

    status = '{"status":{"phase":"Ready","observed":2}}'
    patched = kubectl.json(
        "patch", "widget", "w", "-n", ns, "--subresource=status", "--type=merge", "-p", status
    )
    assert patched["status"] == {"phase": "Ready", "observed": 2}
    assert patched["metadata"]["generation"] == 2  # status writes do not bump the generation

    # With the status subresource on, the main resource ignores status and /status ignores spec.
    kubectl("patch", "widget", "w", "-n", ns, "--type=merge", "-p", '{"status":{"phase":"Hacked"}}')
    kubectl(
        "patch",
        "widget",
        "w",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"spec":{"replicas":7}}',
    )
    final = kubectl.json("get", "widget", "w", "-n", ns)
    assert final["status"]["phase"] == "Ready"
    assert final["spec"]["replicas"] == 1

    invalid = kubectl(
        "patch", "widget", "w", "-n", ns, "--type=merge", "-p", '{"spec":{"color":"blue"}}', check=False
    )
    assert invalid.returncode != 0
    assert 'Unsupported value: "blue"' in invalid.stderr


class Watch:
    """``kubectl get --raw <path>?watch=1...`` as a stream of decoded watch events."""

    def __init__(self, kubectl: Kubectl, path: str) -> None:
        self.proc = subprocess.Popen(
            [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "get", "--raw", path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.events.put(json.loads(line))

    def take(self, count: int, *, deadline: float = 60.0) -> list[dict[str, Any]]:
        end = time.monotonic() + deadline
        out: list[dict[str, Any]] = []
        while len(out) < count:
            try:
                out.append(self.events.get(timeout=max(0.0, end - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"watch delivered {len(out)} of {count} events: {out}")
        return out

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"])
        for e in events
    ]


def test_watch_sees_changes_in_order_and_resumes(
    crd: dict[str, Any], kubectl: Kubectl, k8s_namespace: str
) -> None:
    ns = k8s_namespace
    base = f"/apis/{API}/namespaces/{ns}/widgets?watch=1&timeoutSeconds=120&resourceVersion="
    start_rv = kubectl.json("get", "widgets", "-n", ns)["metadata"]["resourceVersion"]
    live = Watch(kubectl, base + start_rv)
    try:
        expected = [("ADDED", "a", kubectl.json("create", "-f", "-", input=json.dumps(widget("a", ns))))]
        for color in ("red", "green"):
            patch = json.dumps({"spec": {"color": color}})
            expected.append(
                ("MODIFIED", "a", kubectl.json("patch", "widget", "a", "-n", ns, "--type=merge", "-p", patch))
            )
        expected.append(("ADDED", "b", kubectl.json("create", "-f", "-", input=json.dumps(widget("b", ns)))))
        kubectl("delete", "widget", "a", "-n", ns)
        want = [(t, n, o["metadata"]["resourceVersion"]) for t, n, o in expected]
        events = live.take(5)
    finally:
        live.close()
    got = _summary(events)
    assert got[:4] == want
    assert got[4][:2] == ("DELETED", "a")
    assert [e["object"]["spec"].get("color") for e in events[:3]] == [None, "red", "green"]

    resumed = Watch(kubectl, base + want[1][2])  # resume after the first MODIFIED
    try:
        assert _summary(resumed.take(3)) == [*want[2:], got[4]]
    finally:
        resumed.close()
