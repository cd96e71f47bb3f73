"""Two operator replicas never both write: Kopf peering with distinct priorities.

The lower-priority replica pauses (Kopf stops its watches, and the housekeeping loop checks the same peering
object) while the higher one is alive; when the higher one stops, the lower one takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cluster.kubectl import Kubectl
from kopfharness import OperatorNamespaces, OperatorProcess, route_configmaps, route_document
from waiting import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"
StartOperator = Callable[..., OperatorProcess]


def weight(kubectl: Kubectl, ns: OperatorNamespaces) -> float | None:
    cm = route_configmaps(kubectl, ns.config).get(f"graylane-route-{ns.routes}-checkout")
    return route_document(cm)["weight"] if cm else None


def test_only_the_highest_priority_replica_writes(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "graylane", "namespace": ns},
    }
    kubectl.apply(peering)
    high = start_operator("--peering", "graylane", "--priority", "100")
    eventually(
        lambda: kubectl.json("get", "kopfpeering", "graylane", "-n", ns).get("status") or {},
        what="the first replica registers in the peering object",
    )
    low = start_operator("--peering", "graylane", "--priority", "50")
    eventually(
        lambda: len(kubectl.json("get", "kopfpeering", "graylane", "-n", ns).get("status") or {}) == 2,
        what="the second replica registers too (and stays paused: it is outranked)",
    )
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES))
    eventually(lambda: weight(kubectl, operator_ns) == 5, what="the route is compiled")
    for value in (10, 20):
        kubectl.set_weight("checkout", ns, value)
        eventually(lambda value=value: weight(kubectl, operator_ns) == value, what=f"weight {value} applied")
    assert "Applied weight 20" in high.log()
    eventually(lambda: "Resynced" in high.log(), what="the active replica's housekeeping ran")
    assert "Applied weight" not in low.log() and "Handler 'route_event'" not in low.log()
    assert "Resynced" not in low.log() and "Swept" not in low.log()  # its housekeeping stays idle too

    high.stop()  # graceful: Kopf removes its peering entry, so the other replica resumes at once
    eventually(lambda: "Resuming operations after the pause" in low.log(), what="the other replica resumes")
    kubectl("patch", "canaryroute", "checkout", "-n", ns, "--type=merge", "-p", '{"spec":{"weight":40}}')
    eventually(lambda: weight(kubectl, operator_ns) == 40, what="the remaining replica applies weight 40")
    assert "Applied weight 40" in low.log()
