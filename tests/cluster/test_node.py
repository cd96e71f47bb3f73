"""The real node: kubelet + containerd + kube-proxy + CoreDNS, with pods from images built here.

Every assertion is the cluster's own answer: node conditions, pod status, events, HTTP from pods.
Traffic goes only to the pods and Services these tests create (and the node's CoreDNS).
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cluster import build, images
from cluster.kubectl import Kubectl
from cluster.launcher import ControlPlane, node_enabled
from cluster.nodeconf import NET
from cluster.pods import PodFailure, events, format_events, wait_pods

LAUNCHER = Path(__file__).with_name("launcher.py")
pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(not node_enabled(), reason="GRAYLANE_NODE=0: control plane only"),
]

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod(name: str, *command: str, image: str = images.TESTAPP.ref, restart: str = "Never") -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "securityContext": RESTRICTED,
    }
    if command:
        container["command"] = list(command)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], "restartPolicy": restart, "terminationGracePeriodSeconds": 2},
    }


def echo_app(name: str, replicas: int) -> list[dict[str, Any]]:
    template = pod(name, restart="Always")
    template["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    template["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template["metadata"], "spec": template["spec"]},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [deployment, service]


@pytest.fixture
def restricted_ns(kubectl: Kubectl, k8s_namespace: str) -> str:
    kubectl("label", "namespace", k8s_namespace, "pod-security.kubernetes.io/enforce=restricted")
    return k8s_namespace


def test_one_node_is_ready(kubectl: Kubectl) -> None:
    nodes = kubectl.json("get", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [NET.name]
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    addresses = {a["type"]: a["address"] for a in nodes[0]["status"]["addresses"]}
    assert addresses["InternalIP"] == NET.node_ip


def test_restricted_pod_runs_and_logs_and_exec_work(kubectl: Kubectl, restricted_ns: str) -> None:
    kubectl.apply(pod("web", restart="Always"), "-n", restricted_ns)
    wait_pods(kubectl, restricted_ns, "app=web")
    assert "echo: listening on :8080" in kubectl("logs", "-n", restricted_ns, "web").stdout
    result = kubectl("exec", "-n", restricted_ns, "web", "--", "/crash", check=False)
    assert result.returncode == 3, result.stderr
    assert "crash: line 3 before exiting" in result.stdout


def test_privileged_pod_is_refused_in_a_restricted_namespace(kubectl: Kubectl, restricted_ns: str) -> None:
    bad = pod("root")
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    result = kubectl("apply", "-n", restricted_ns, "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr


def backends_answering(url: str, backends: set[str], timeout: float = 60.0) -> set[str]:
    """The pods that answered ``url`` until all of ``backends`` did (kube-proxy picks one at random).
    Until kube-proxy has programmed the Service (a moment after the pods are Ready), it is refused."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while seen != backends and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                seen.add(response.read().decode().split()[0])
        except OSError:
            time.sleep(0.2)  # not programmed yet: ask again
    return seen


def test_service_answers_on_its_cluster_ip_from_the_host_and_by_name_from_a_pod(
    kubectl: Kubectl, restricted_ns: str
) -> None:
    ns = restricted_ns
    kubectl.apply(echo_app("echo", replicas=2), "-n", ns)
    backends = {p["metadata"]["name"] for p in wait_pods(kubectl, ns, "app=echo", count=2)}
    cluster_ip = kubectl.json("get", "service", "echo", "-n", ns)["spec"]["clusterIP"]
    assert backends_answering(f"http://{cluster_ip}/from-host", backends) == backends
    url = f"http://echo.{ns}.svc.{NET.cluster_domain}/from-pod"
    kubectl.apply(pod("client", "/get", url), "-n", ns)
    wait_pods(kubectl, ns, "app=client", phase="Succeeded")
    out = kubectl("logs", "-n", ns, "client").stdout
    assert out.startswith("get: 200 ") and out.split()[2] in backends and out.split()[3] == "/from-pod"


def dns_rcode(name: str) -> int:
    """Ask the node's CoreDNS for ``name`` (type A) and return the response code."""
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".") if part)
    query = struct.pack(">HHHHHH", 0x4752, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, (NET.dns_ip, 53))
        answer = sock.recv(512)
    assert answer[:2] == query[:2]
    return int(struct.unpack(">H", answer[2:4])[0] & 0xF)


def test_outside_names_are_refused_and_cluster_names_resolve(kubectl: Kubectl, restricted_ns: str) -> None:
    assert dns_rcode("graylane-test.example.com") == 5  # REFUSED: no zone but the cluster's, no forward
    assert dns_rcode(f"kubernetes.default.svc.{NET.cluster_domain}") == 0
    assert dns_rcode(f"nothing.default.svc.{NET.cluster_domain}") == 3  # NXDOMAIN
    kubectl.apply(pod("outside", "/lookup", "graylane-test.example.com."), "-n", restricted_ns)
    wait_pods(kubectl, restricted_ns, "app=outside", phase="Failed")
    out = kubectl("logs", "-n", restricted_ns, "outside").stdout
    assert out.startswith("lookup: error: lookup graylane-test.example.com"), out


def test_a_missing_image_is_never_pulled_and_the_events_say_so(kubectl: Kubectl, restricted_ns: str) -> None:
    kubectl.apply(pod("ghost", image="localhost/graylane/not-built:v1"), "-n", restricted_ns)
    with pytest.raises(PodFailure, match="ErrImageNeverPull") as failure:
        wait_pods(kubectl, restricted_ns, "app=ghost")
    print(failure.value)  # the events, in the test output
    reasons = {e["reason"] for e in events(kubectl, restricted_ns, "ghost")}
    assert "ErrImageNeverPull" in reasons
    assert "Pulling" not in reasons


def test_a_crashing_pod_is_reported_with_its_last_log_lines_and_events(
    kubectl: Kubectl, restricted_ns: str
) -> None:
    spec = pod("crasher", "/crash", restart="Always")
    # Never ready: without a probe the kubelet may report the container Running and Ready for the
    # instant before it notices the exit, and the wait would (rightly) return.
    spec["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 9}, "periodSeconds": 1}
    kubectl.apply(spec, "-n", restricted_ns)
    with pytest.raises(PodFailure) as failure:
        wait_pods(kubectl, restricted_ns, "app=crasher", timeout=90)
    report = str(failure.value)
    print(report)
    assert "exited with code 3" in report or "CrashLoopBackOff" in report
    assert "crash: line 3 before exiting" in report  # the last log lines
    assert "Normal Started" in report  # the events


def test_nothing_was_pulled(kubectl: Kubectl, cluster_plane: ControlPlane | None) -> None:
    if cluster_plane is None:
        pytest.skip("an external cluster: its images are not ours to check")
    all_events = kubectl.json("get", "events", "-A")["items"]
    pulled = [e for e in all_events if e.get("reason") == "Pulled" and "already present" not in e["message"]]
    assert pulled == [], format_events(pulled)
    # Other suites' pods (the chart's IfNotPresent) may have tried: they end at a closed loopback port.
    tried = [e for e in all_events if e.get("reason") == "Pulling"]
    print("pull attempts:\n" + format_events(tried))
    refs = [r for r in images.image_refs(state_dir=cluster_plane.state_dir) if not r.startswith("sha256:")]
    assert {spec.ref for spec in images.NODE_IMAGES} <= set(refs)
    assert all(ref.startswith("localhost/graylane/") for ref in refs), refs  # built here, imported
    environ = Path(f"/proc/{cluster_plane.pids['containerd']}/environ").read_bytes().split(b"\0")
    assert b"HTTPS_PROXY=http://127.0.0.1:9" in environ  # where any pull would go


def test_a_pull_goes_nowhere(kubectl: Kubectl, restricted_ns: str) -> None:
    """An image that would be pulled (IfNotPresent, as the chart's) fails at once: ErrImagePull, with
    containerd's registry client sent to a closed loopback port (the name is never even resolved)."""
    spec = pod("pull", image="registry.graylane.invalid/not-built:v1")
    spec["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    kubectl.apply(spec, "-n", restricted_ns)
    with pytest.raises(PodFailure, match=r"ErrImagePull|ImagePullBackOff") as failure:
        wait_pods(kubectl, restricted_ns, "app=pull")
    print(failure.value)
    assert "127.0.0.1:9" in str(failure.value)


def test_import_images_loads_an_archive_that_pods_then_run(
    kubectl: Kubectl, cluster_plane: ControlPlane | None, restricted_ns: str, tmp_path: Path
) -> None:
    if cluster_plane is None:
        pytest.skip("an external cluster")
    spec = images.ImageSpec("localhost/graylane/imported:v1", ("echo",), ("/echo",), "10001:10001")
    archive = tmp_path / "imported.tar"
    archive.write_bytes(images.archive_bytes(spec, build.ensure_imageprogs(build=False).read_bytes()))
    cli = [
        sys.executable,
        str(LAUNCHER),
        "import-images",
        str(archive),
        "--state-dir",
        str(cluster_plane.state_dir),
    ]
    result = subprocess.run(cli, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "imported localhost/graylane/imported:v1" in result.stdout
    kubectl.apply(pod("imported", image=spec.ref, restart="Always"), "-n", restricted_ns)
    wait_pods(kubectl, restricted_ns, "app=imported")
