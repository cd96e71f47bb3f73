"""The two ways `make demo` runs Graylane: as pods on the node (the default), or as local processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cluster.controlplane import ControlPlane
from cluster.kubectl import Kubectl
from cluster.podstack import PodStack, ensure_node_images, service_upstream
from cluster.stack import LocalStack, http_get, route_manifest, upstream_manifest, wait_until
from demo_story import HOST, Phase, Target, say

NS = "demo"
ROUTE = f"{NS}/checkout"
EXPLAIN = f"/explain?host={HOST}&path=/&header={quote('X-Canary:true')}"
Story = Callable[[Kubectl, Target], None]


def run_on_pods(plane: ControlPlane, kubectl: Kubectl, helm: Path, work: Path, story: Story) -> None:
    with Phase("Importing the images built from deploy/docker/ into the node's containerd"):
        tag = ensure_node_images(plane)
    stack = PodStack(kubectl=kubectl, helm=helm, workdir=work, tag=tag, apps=NS)
    with Phase("helm install (default values, Pod Security restricted); waiting for the 4 pods to be Ready"):
        stack.install()
    with Phase(f"Demo versions v1 and v2 as pods behind Services in {NS}; waiting for them to be Ready"):
        stack.deploy_backends("v1", "v2")
    print(kubectl("get", "pods", "-A", "-o", "wide").stdout)
    say(f"kubectl apply -n {NS}: Upstreams naming the Services, CanaryRoute checkout (weight 10)")
    kubectl.apply([service_upstream("v1"), service_upstream("v2")], "-n", NS)
    kubectl.apply(route_manifest(10, host=HOST), "-n", NS)
    stack.wait_weight(ROUTE, 10, timeout=120)
    host, port = stack.proxy_address

    def explain() -> dict[str, Any]:
        ip = stack.ready_proxy_ips()[0]
        return dict(json.loads(http_get(f"http://{ip}:9090{EXPLAIN}")[1]))

    story(kubectl, Target(f"http://{host}:{port}", lambda w: stack.wait_weight(ROUTE, w), explain))


def run_as_processes(plane: ControlPlane, kubectl: Kubectl, helm: Path, work: Path, story: Story) -> None:
    stack = LocalStack(kubectl=kubectl, helm=helm, workdir=work, watch=(NS,))
    try:
        say("helm install graylane deploy/helm/graylane (CRDs, RBAC, ServiceAccounts, Deployments)")
        stack.install_chart()
        say("Operator and proxy as local processes, authenticated with the chart's ServiceAccount tokens")
        v1, v2 = stack.start_upstream("v1"), stack.start_upstream("v2")
        stack.start_operator()
        port, admin = stack.start_proxy()
        print(f"  proxy on 127.0.0.1:{port} (admin {admin}); demo versions v1 :{v1}, v2 :{v2}")
        say(f"kubectl apply -n {NS}: Upstreams checkout-v1, checkout-v2 and CanaryRoute checkout (weight 10)")
        kubectl.apply(
            [upstream_manifest("checkout-v1", v1, "v1"), upstream_manifest("checkout-v2", v2, "v2")], "-n", NS
        )
        kubectl.apply(route_manifest(10, host=HOST), "-n", NS)

        def weight_is(w: float) -> object:
            check = lambda: _process_weight(admin) == w  # noqa: E731
            return wait_until(f"weight {w} on the proxy", check, timeout=90, every=0.02)

        weight_is(10)

        def explain() -> dict[str, Any]:
            return dict(json.loads(http_get(f"http://127.0.0.1:{admin}{EXPLAIN}")[1]))

        story(kubectl, Target(f"http://127.0.0.1:{port}", weight_is, explain))
        say("Cleaning up: delete the route, stop the processes, helm uninstall")
        kubectl("delete", "canaryroute", "checkout", "-n", NS)
    finally:
        stack.stop()
        stack.uninstall_chart()


def _process_weight(admin: int) -> float | None:
    status, body = http_get(f"http://127.0.0.1:{admin}/routes")
    routes = json.loads(body)["routes"] if status == 200 else []
    return next((r["weight"] for r in routes if r["route"] == ROUTE), None)
