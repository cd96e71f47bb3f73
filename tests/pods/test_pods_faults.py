"""Real faults under steady load through the proxy Service: no request may be lost.

The load is one client sending requests back to back on keep-alive connections, as a real client does (it
reconnects when an answer says ``Connection: close``). Pods are deleted and restarted the way Kubernetes does
it: the kubelet sends SIGTERM, the proxy fails readiness, keeps answering through the drain delay and closes
its connections with the answers, the EndpointSlice and kube-proxy move new connections elsewhere.
"""

from __future__ import annotations

from cluster.kubectl import Kubectl
from cluster.podstack import PodStack, SteadyLoad, pod_ready
from cluster.stack import wait_until
from podtest import ROUTE


def report(load: SteadyLoad, what: str) -> None:
    print(f"{what}: {load.ok} answered, lost {dict(load.lost) or 0}, versions {dict(load.versions)}")


def wait_replaced(pods: PodStack, component: str, old: set[str], *, timeout: float = 180) -> None:
    """Until ``component`` has two Ready pods again and none of ``old`` is left."""

    def done() -> bool:
        now = pods.pods(component)
        names = {p["metadata"]["name"] for p in now}
        ready = [p for p in now if p["metadata"].get("deletionTimestamp") is None and pod_ready(p)]
        return not (names & old) and len(ready) == 2

    wait_until(f"{component} pods replaced", done, timeout=timeout, every=0.5)


def test_deleting_a_proxy_pod_loses_no_request(pods: PodStack, kubectl: Kubectl) -> None:
    victim = pods.pods("proxy")[0]["metadata"]["name"]
    with SteadyLoad(*pods.proxy_address) as load:
        load.wait_for(200)
        kubectl("delete", "pod", victim, "-n", pods.namespace, "--wait=true", timeout=120)
        wait_replaced(pods, "proxy", {victim})
        load.wait_for(200)
    report(load, f"delete pod {victim}")
    assert load.ok > 400 and not load.lost


def test_a_rolling_restart_of_the_proxies_loses_no_request(pods: PodStack, kubectl: Kubectl) -> None:
    old = {p["metadata"]["name"] for p in pods.pods("proxy")}
    deployment = f"deployment/{pods.release}-proxy"
    with SteadyLoad(*pods.proxy_address) as load:
        load.wait_for(200)
        kubectl("rollout", "restart", deployment, "-n", pods.namespace)
        kubectl("rollout", "status", deployment, "-n", pods.namespace, "--timeout=240s", timeout=260)
        wait_replaced(pods, "proxy", old)
        load.wait_for(200)
    report(load, "rollout restart")
    assert load.ok > 400 and not load.lost


def active_operator(pods: PodStack, kubectl: Kubectl) -> str:
    """The operator pod Kopf peering made active: the highest priority in the peering object."""
    peers = kubectl.json("get", "kopfpeering", "graylane", "-n", pods.apps).get("status") or {}
    live = {p["metadata"]["name"] for p in pods.pods("operator")}
    ranked = sorted((info["priority"], name) for name, info in peers.items() if name in live)
    assert ranked, peers
    return str(ranked[-1][1])


def test_the_standby_operator_takes_over_and_the_route_follows_a_patch(
    pods: PodStack, kubectl: Kubectl
) -> None:
    active = wait_until("an active operator", lambda: active_operator(pods, kubectl), timeout=60)
    with SteadyLoad(*pods.proxy_address) as load:
        load.wait_for(100)
        kubectl("delete", "pod", active, "-n", pods.namespace, "--wait=true", timeout=120)
        kubectl.set_weight("checkout", pods.apps, 35)
        try:
            seconds = pods.wait_weight(ROUTE, 35, timeout=120)
            print(f"after the active operator {active} was deleted, weight 35 was served in {seconds:.1f} s")
        finally:
            kubectl.set_weight("checkout", pods.apps, 20)
            pods.wait_weight(ROUTE, 20, timeout=120)
        wait_replaced(pods, "operator", {active})
        load.wait_for(100)
    report(load, f"delete the active operator {active}")
    assert not load.lost
