"""``kubectl graylane`` on the real test control plane with the real kubectl (and a real proxy for explain).

The plugin is run the way users run it: ``kubectl graylane …``, found by kubectl on ``PATH`` as
``kubectl-graylane`` (the installed entry point). The rollout's operator side is played by the test with the
pure core (``graylane.rollout.machine.step``) writing ``status`` through the status subresource, as the
operator will.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster.kubectl import Kubectl
from cluster.ports import free_port

from graylane.rollout.analysis import Figures, TrackFigures
from graylane.rollout.machine import RolloutStatus, parse_rollout_spec, step

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"
VENV_BIN = Path(sys.executable).parent
ROLLOUT = {"steps": [{"weight": 5, "pause": "1m"}, {"weight": 50}], "interval": "2s"}


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    """The CRDs exactly as shipped (deploy/crds/): the schema under test is the one users install."""
    kubectl("apply", "-f", str(CRDS))
    kubectl("wait", "--for=condition=Established", "crd/canaryroutes.graylane.io", "--timeout=60s")


@pytest.fixture
def plugin(kubectl: Kubectl, k8s_namespace: str, crds: None) -> Iterator[Any]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECTL": str(kubectl.binary),
        "KUBECONFIG": str(kubectl.kubeconfig),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(kubectl.binary), "graylane", *args]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} exited {result.returncode}: {result.stderr}")
        return result

    run.env = env  # type: ignore[attr-defined]
    yield run


def apply_route(kubectl: Kubectl, namespace: str, name: str = "checkout", **spec: Any) -> None:
    obj = {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"stable": "checkout-v1", "canary": "checkout-v2", "weight": 0, **spec},
    }
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def get(kubectl: Kubectl, namespace: str, name: str = "checkout") -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.json("get", "canaryroutes.graylane.io", name, "-n", namespace)
    return obj


def write_status(kubectl: Kubectl, namespace: str, status: dict[str, Any], name: str = "checkout") -> None:
    kubectl(
        "patch",
        "canaryroutes.graylane.io",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def operator_tick(kubectl: Kubectl, namespace: str, *, figures: Figures | None = None) -> RolloutStatus:
    """What the operator does each interval, with the pure core, on the real object."""
    obj = get(kubectl, namespace)
    spec = obj["spec"]
    new, _ = step(
        parse_rollout_spec(spec["rollout"]),
        RolloutStatus.from_dict(obj.get("status")),
        now=datetime.now(UTC),
        figures=figures,
        scrape_ok=True,
        canary_revision=spec["canary"],
        manual_weight=spec.get("weight"),
    )
    write_status(kubectl, namespace, new.to_dict())
    return new


def test_patches_land_on_the_spec(plugin: Any, kubectl: Kubectl, k8s_namespace: str) -> None:
    apply_route(kubectl, k8s_namespace, rollout=ROLLOUT)
    ns = ["-n", k8s_namespace]
    assert "spec.weight=12.5" in plugin("set-weight", "checkout", "12.5", *ns).stdout
    assert get(kubectl, k8s_namespace)["spec"]["weight"] == 12.5
    plugin("pause", "checkout", *ns)
    assert get(kubectl, k8s_namespace)["spec"]["rollout"]["paused"] is True
    plugin("abort", "checkout", *ns)
    rollout = get(kubectl, k8s_namespace)["spec"]["rollout"]
    assert (rollout["abort"], rollout["steps"]) == (True, ROLLOUT["steps"])  # a merge patch keeps the rest
    plugin("promote", "checkout", *ns)
    assert get(kubectl, k8s_namespace)["spec"]["weight"] == 100


def test_refusals_and_kubectl_errors_exit_1(plugin: Any, kubectl: Kubectl, k8s_namespace: str) -> None:
    apply_route(kubectl, k8s_namespace, name="plain")
    result = plugin("abort", "plain", "-n", k8s_namespace, check=False)
    assert result.returncode == 1 and "has no spec.rollout" in result.stderr
    assert "rollout" not in get(kubectl, k8s_namespace, "plain")["spec"]
    result = plugin("pause", "missing", "-n", k8s_namespace, check=False)
    assert (result.returncode == 1 and "NotFound" in result.stderr) or "not found" in result.stderr


def test_status_table_from_the_operator_status(plugin: Any, kubectl: Kubectl, k8s_namespace: str) -> None:
    apply_route(kubectl, k8s_namespace, rollout=ROLLOUT)
    good = Figures(10, TrackFigures(900, 1, 0.111, 20.0), TrackFigures(100, 0, 0.0, 31.5))
    operator_tick(kubectl, k8s_namespace)  # starts the rollout at step 1
    operator_tick(kubectl, k8s_namespace, figures=good)  # a passing check, pause not over: holds
    out = plugin("status", "checkout", "-n", k8s_namespace).stdout
    row = out.splitlines()[1].split()
    assert row == [
        "checkout",
        "checkout-v1",
        "checkout-v2",
        "5%",
        "1/2",
        "Progressing",
        "0.111%",
        "20ms",
        "0%",
        "31.5ms",
        "-",
        "-",
    ]
    listing = plugin("status", "-A").stdout
    assert any(line.split()[:2] == [k8s_namespace, "checkout"] for line in listing.splitlines())


def test_resume_after_a_rollback_retries_through_aborted(
    plugin: Any, kubectl: Kubectl, k8s_namespace: str
) -> None:
    apply_route(kubectl, k8s_namespace, rollout=ROLLOUT)
    operator_tick(kubectl, k8s_namespace)
    bad = Figures(10, TrackFigures(900, 0, 0.0, 20.0), TrackFigures(100, 50, 50.0, 30.0))
    operator_tick(kubectl, k8s_namespace, figures=bad)
    assert operator_tick(kubectl, k8s_namespace, figures=bad).phase == "RolledBack"

    argv = [str(kubectl.binary), "graylane", "resume", "checkout", "-n", k8s_namespace, "--timeout", "60"]
    with subprocess.Popen(
        argv, env=plugin.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        deadline = time.monotonic() + 60
        while not get(kubectl, k8s_namespace)["spec"]["rollout"].get("abort"):
            assert time.monotonic() < deadline, "the plugin never set abort"
            time.sleep(0.2)
        assert operator_tick(kubectl, k8s_namespace).phase == "Aborted"
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "spec.rollout.abort=false" in stdout
    rollout = get(kubectl, k8s_namespace)["spec"]["rollout"]
    assert (rollout["abort"], rollout["paused"]) == (False, False)
    retried = operator_tick(kubectl, k8s_namespace)
    assert (retried.phase, retried.canary_weight, retried.current_step) == ("Progressing", 5, 0)


def test_resume_hands_a_manual_weight_back(plugin: Any, kubectl: Kubectl, k8s_namespace: str) -> None:
    apply_route(kubectl, k8s_namespace, rollout=ROLLOUT)
    operator_tick(kubectl, k8s_namespace)
    plugin("set-weight", "checkout", "30", "-n", k8s_namespace)
    paused = operator_tick(kubectl, k8s_namespace)
    assert (paused.phase, paused.canary_weight) == ("Paused", 30)
    plugin("resume", "checkout", "-n", k8s_namespace)
    assert get(kubectl, k8s_namespace)["spec"]["weight"] == 0
    resumed = operator_tick(kubectl, k8s_namespace)
    assert (resumed.phase, resumed.canary_weight) == ("Progressing", 5)


@pytest.fixture
def proxy_for(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []
    logs = contextlib.ExitStack()

    def start(manifests: list[dict[str, Any]]) -> str:
        source, out = tmp_path / "manifests.yaml", tmp_path / "routes"
        source.write_text(yaml.safe_dump_all(manifests))
        subprocess.run([str(VENV_BIN / "graylane"), "render", "-f", str(source), "-o", str(out)], check=True)
        admin = f"127.0.0.1:{free_port()}"
        log = logs.enter_context((tmp_path / "proxy.log").open("wb"))
        procs.append(
            subprocess.Popen(
                [
                    str(VENV_BIN / "graylane-proxy"),
                    "--config-dir",
                    str(out),
                    "--listen",
                    f"127.0.0.1:{free_port()}",
                    "--admin-listen",
                    admin,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{admin}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return f"http://{admin}"
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "proxy.log").read_text()
            time.sleep(0.1)

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
    logs.close()


def test_explain_asks_a_real_proxy(plugin: Any, kubectl: Kubectl, k8s_namespace: str, proxy_for: Any) -> None:
    upstreams = [
        {
            "apiVersion": "graylane.io/v1alpha1",
            "kind": "Upstream",
            "metadata": {"name": name, "namespace": k8s_namespace},
            "spec": {"url": f"http://127.0.0.1:{port}"},
        }
        for name, port in (("checkout-v1", 9), ("checkout-v2", 9))
    ]
    route = {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": "checkout", "namespace": k8s_namespace},
        "spec": {
            "hosts": ["checkout.example.com"],
            "stable": "checkout-v1",
            "canary": "checkout-v2",
            "weight": 0,
            "rules": [
                {"name": "qa", "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}, "to": "canary"},
                {"name": "office", "match": {"sourceCIDRs": ["203.0.113.0/24"]}, "to": "canary"},
            ],
        },
    }
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [*upstreams, route]}),
    )
    admin = proxy_for([*upstreams, route])
    ns = ["-n", k8s_namespace, "--proxy-admin", admin]

    out = plugin("explain", "checkout", "--header", "X-Canary=true", *ns).stdout
    assert out.splitlines()[0] == f"{k8s_namespace}/checkout → canary (checkout-v2), reason rule:qa"
    answer = json.loads(out.split("\n", 1)[1])
    assert answer["request"]["host"] == "checkout.example.com"

    out = plugin("explain", "checkout", "--ip", "203.0.113.7", *ns).stdout
    assert "reason rule:office" in out.splitlines()[0]
    out = plugin("explain", "checkout", "--header", "X-Canary=false", "--ip", "198.51.100.1", *ns).stdout
    assert " → stable (checkout-v1)" in out.splitlines()[0]
    out = plugin("explain", "checkout", "--host", "elsewhere.example", *ns).stdout
    assert out.startswith("no route matches")
