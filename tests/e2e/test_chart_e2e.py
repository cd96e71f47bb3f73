"""End to end on the real control plane, as the chart deploys it.

The chart is installed with helm; the operator and the proxy run as local processes with the chart's own
container args and with tokens of the chart's own ServiceAccounts, so the chart's RBAC is what is tested.
Two upstreams (v1, v2) run on loopback; the README's example route is applied and steered with kubectl.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cluster.kubectl import Kubectl
from cluster.stack import LocalStack, http_get, installed, route_manifest, upstream_manifest, wait_until

NS = "e2e-shop"
HOST = "checkout.example.com"


@pytest.fixture(scope="module")
def stack(kubectl: Kubectl, helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work = tmp_path_factory.mktemp("stack")
    s = LocalStack(kubectl=kubectl, helm=helm_bin, workdir=work, namespace="graylane-e2e", watch=(NS,))
    with installed(s, uninstall=False):  # test_uninstall_leaves_only_the_crds uninstalls
        yield s


@pytest.fixture(scope="module")
def running(stack: LocalStack) -> dict[str, int]:
    v1 = stack.start_upstream("v1")
    v2 = stack.start_upstream("v2")
    stack.start_operator()
    port, admin = stack.start_proxy()
    stack.kubectl.apply(
        [upstream_manifest("checkout-v1", v1, "v1"), upstream_manifest("checkout-v2", v2, "v2")], "-n", NS
    )
    stack.kubectl.apply(route_manifest(20, host=HOST), "-n", NS)
    wait_until("the route is served", lambda: served_weight(admin) == 20, timeout=90)
    return {"port": port, "admin": admin}


def served_weight(admin: int) -> float | None:
    status, body = http_get(f"http://127.0.0.1:{admin}/routes")
    routes = json.loads(body)["routes"] if status == 200 else []
    return next((r["weight"] for r in routes if r["route"] == f"{NS}/checkout" and r["serving"]), None)


def split(port: int, n: int, extra: dict[str, str] | None = None) -> Counter[str]:
    seen: Counter[str] = Counter()
    for i in range(n):
        headers = {"Host": HOST, "X-User-Id": f"user-{i}"} | (extra or {})
        status, body = http_get(f"http://127.0.0.1:{port}/", headers)
        assert status == 200, body
        seen[body.decode().strip()] += 1
    return seen


def test_traffic_splits_as_configured(running: dict[str, int]) -> None:
    seen = split(running["port"], 400)
    assert set(seen) == {"v1", "v2"}
    assert 0.12 <= seen["v2"] / 400 <= 0.28, seen


def test_the_chart_runs_the_fast_server(running: dict[str, int]) -> None:
    """The proxy as the chart starts it (no --server) is the fast server: named so, and it tunnels."""
    status, body = http_get(f"http://127.0.0.1:{running['admin']}/routes")
    assert status == 200 and json.loads(body)["server"] == "fast"
    status, metrics = http_get(f"http://127.0.0.1:{running['admin']}/metrics")
    assert 'graylane_proxy_info{server="fast",version="' in metrics.decode()

    async def echo() -> str:
        headers = {"Host": HOST, "X-Canary": "true"}
        url = f"http://127.0.0.1:{running['port']}/ws"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
            await ws.send_str("hello")
            return str(await ws.receive_str(timeout=10))

    assert asyncio.run(echo()) == "v2: hello"


def test_patch_moves_the_split(stack: LocalStack, running: dict[str, int]) -> None:
    stack.kubectl.set_weight("checkout", NS, 70)
    wait_until("weight 70 on the proxy", lambda: served_weight(running["admin"]) == 70, timeout=30)
    seen = split(running["port"], 400)
    assert 0.62 <= seen["v2"] / 400 <= 0.78, seen
    route = stack.kubectl.json("get", "canaryroute", "checkout", "-n", NS)
    assert route["status"]["canaryWeight"] == 70


def test_header_sends_to_canary(stack: LocalStack, running: dict[str, int]) -> None:
    stack.kubectl.set_weight("checkout", NS, 0)
    wait_until("weight 0 on the proxy", lambda: served_weight(running["admin"]) == 0, timeout=30)
    assert split(running["port"], 50) == Counter({"v1": 50})
    assert split(running["port"], 50, {"X-Canary": "true"}) == Counter({"v2": 50})


def test_chart_rbac_refuses_what_it_does_not_grant(stack: LocalStack, running: dict[str, int]) -> None:
    proxy = stack.token_kubectl("proxy")
    denied = proxy("create", "configmap", "evil", "-n", stack.namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    allowed = proxy(
        "get", "configmaps", "-n", stack.namespace, "-l", "graylane.io/route-config=true", "-o", "name"
    )
    assert "configmap/graylane-route-" in allowed.stdout
    operator = stack.token_kubectl("operator")
    denied = operator("get", "secrets", "-n", stack.namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    denied = operator("create", "configmap", "evil", "-n", "default", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr


def test_uninstall_leaves_only_the_crds(stack: LocalStack, running: dict[str, int]) -> None:
    stack.kubectl("delete", "canaryroute", "checkout", "-n", NS, "--wait=true")
    wait_until("the route ConfigMap is removed", lambda: not _route_configmaps(stack), timeout=30)
    stack.stop()
    stack.uninstall_chart()
    kinds = "serviceaccounts,roles,rolebindings,services,deployments,configmaps,secrets,poddisruptionbudgets"
    left = stack.kubectl.json("get", kinds, "-n", stack.namespace)
    names = {f"{o['kind']}/{o['metadata']['name']}" for o in left["items"]}
    assert names <= {"ServiceAccount/default", "ConfigMap/kube-root-ca.crt"}, names
    cluster_wide = stack.kubectl.json(
        "get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/name=graylane"
    )
    assert cluster_wide["items"] == []
    crds = stack.kubectl.json("get", "crd", "-o", "json")["items"]
    assert {"canaryroutes.graylane.io", "upstreams.graylane.io"} <= {c["metadata"]["name"] for c in crds}


def _route_configmaps(stack: LocalStack) -> list[Any]:
    found = stack.kubectl.json(
        "get", "configmaps", "-n", stack.namespace, "-l", "graylane.io/route-config=true"
    )
    return list(found["items"])
