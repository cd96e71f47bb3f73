"""The operator as a real process against the real control plane: the life of a route.

Aspects: the examples compile into the expected ConfigMap; a kubectl weight patch reaches the ConfigMap, the
status and an Event; ``kubectl get canaryroutes`` shows the columns; deleting the route removes its ConfigMap;
a route deleted while the operator is down is swept after a restart; a killed operator converges to the same
end state and a further restart writes nothing; a forged status is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.kubectl import Kubectl
from kopfharness import OperatorNamespaces, OperatorProcess, idle_figures, route_configmaps, route_document
from waiting import eventually

from graylane.compile.route import compile_route
from graylane.config.document import load_route_document

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"
StartOperator = Callable[..., OperatorProcess]


def apply_examples(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "upstreams.yaml"))
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "canaryroute.yaml"))


def route(kubectl: Kubectl, namespace: str, name: str = "checkout") -> dict[str, Any]:
    return dict(kubectl.json("get", "canaryroute", name, "-n", namespace))


def ready(kubectl: Kubectl, namespace: str, name: str = "checkout") -> dict[str, Any] | None:
    obj = route(kubectl, namespace, name)
    status = obj.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    ok = conditions.get("Ready", {}).get("status") == "True"
    return obj if ok and status.get("observedGeneration") == obj["metadata"]["generation"] else None


def document_of(kubectl: Kubectl, ns: OperatorNamespaces, name: str = "checkout") -> dict[str, Any] | None:
    cm = route_configmaps(kubectl, ns.config).get(f"graylane-route-{ns.routes}-{name}")
    return route_document(cm) if cm else None


def test_examples_compile_into_the_expected_configmap(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    start_operator()
    apply_examples(kubectl, operator_ns.routes)
    obj = eventually(lambda: ready(kubectl, operator_ns.routes), what="the example route becomes Ready")
    name = f"graylane-route-{operator_ns.routes}-checkout"
    cm = route_configmaps(kubectl, operator_ns.config)[name]
    labels = cm["metadata"]["labels"]
    assert labels["graylane.io/route-config"] == "true"
    assert labels["graylane.io/route-namespace"] == operator_ns.routes
    assert labels["graylane.io/route-name"] == "checkout"
    assert labels["graylane.io/route-uid"] == obj["metadata"]["uid"]
    doc = route_document(cm)
    upstreams = {
        u["metadata"]["name"]: u for u in kubectl.json("get", "upstreams", "-n", operator_ns.routes)["items"]
    }
    assert doc == compile_route(obj, upstreams)  # exactly what `graylane render` computes from these objects
    assert load_route_document(cm["data"]["route.json"]).weight == 5  # and the proxy's loader accepts it
    assert doc["upstreams"]["checkout-v1"]["url"] == f"http://checkout-v1.{operator_ns.routes}.svc:8080"
    assert doc["upstreams"]["checkout-v2"]["url"] == "http://127.0.0.1:9002"
    assert doc["versionRouting"]["candidates"] == ["checkout-v1", "checkout-v2"]
    assert doc["route"] == {
        "namespace": operator_ns.routes,
        "name": "checkout",
        "uid": obj["metadata"]["uid"],
        "generation": obj["metadata"]["generation"],
    }
    status = obj["status"]
    assert status["configMap"] == f"{operator_ns.config}/{name}"
    assert status["canaryWeight"] == 5 and status["phase"] == "Ready"
    assert status["checksum"] == doc["checksum"]
    target = f"http://checkout-v1.{operator_ns.routes}.svc:8080"  # written after the routes' own writes
    eventually(lambda: target in kubectl("get", "upstreams", "-n", operator_ns.routes).stdout,
               what="the Upstream's status.target")  # fmt: skip


def test_weight_patch_reaches_configmap_status_and_event_and_columns(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    start_operator()
    apply_examples(kubectl, operator_ns.routes)
    eventually(lambda: ready(kubectl, operator_ns.routes), what="Ready")
    # the first weight is in the status (written after any Event): an Event is for a change only
    assert weight_events(kubectl, operator_ns.routes) == []
    kubectl("patch", "canaryroute", "checkout", "-n", operator_ns.routes, "--type", "merge",
            "-p", '{"spec":{"weight":30}}')  # fmt: skip
    eventually(
        lambda: (document_of(kubectl, operator_ns) or {}).get("weight") == 30, what="ConfigMap weight 30"
    )
    obj = eventually(lambda: ready(kubectl, operator_ns.routes), what="status follows")
    assert obj["status"]["canaryWeight"] == 30
    events = eventually(lambda: weight_events(kubectl, operator_ns.routes), what="a WeightApplied event")
    assert len(events) == 1 and events[0]["involvedObject"]["name"] == "checkout"
    assert "5% -> 30%" in events[0]["message"]
    table = kubectl("get", "canaryroutes", "-n", operator_ns.routes).stdout.splitlines()
    header = table[0].split()
    assert header[:5] == ["NAME", "STABLE", "CANARY", "WEIGHT", "PHASE"] and header[-1] == "AGE"
    assert table[1].split()[:5] == ["checkout", "checkout-v1", "checkout-v2", "30", "Ready"]
    short = kubectl("get", "croute,ups", "-n", operator_ns.routes, "-o", "name").stdout.split()
    assert "canaryroute.graylane.io/checkout" in short and "upstream.graylane.io/checkout-v2" in short
    assert "canaryroute.graylane.io/checkout" in kubectl("get", "graylane", "-n", operator_ns.routes,
                                                         "-o", "name").stdout  # fmt: skip


def weight_events(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    return [e for e in kubectl.json("get", "events", "-n", ns)["items"] if e.get("reason") == "WeightApplied"]


def test_deleting_the_route_removes_its_configmap_without_a_finalizer(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    start_operator()
    apply_examples(kubectl, operator_ns.routes)
    obj = eventually(lambda: ready(kubectl, operator_ns.routes), what="Ready")
    assert not obj["metadata"].get("finalizers"), "no blocking finalizer on routes"
    kubectl("delete", "canaryroute", "checkout", "-n", operator_ns.routes, "--timeout=20s")
    eventually(lambda: not route_configmaps(kubectl, operator_ns.config), what="the ConfigMap is removed")


def test_route_deleted_while_operator_down_is_swept_after_restart(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    first = start_operator()
    apply_examples(kubectl, operator_ns.routes)
    eventually(lambda: ready(kubectl, operator_ns.routes), what="Ready")
    foreign = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "not-ours", "namespace": operator_ns.config,
                            "labels": {"graylane.io/route-config": "true"}}, "data": {"x": "y"}}  # fmt: skip
    kubectl.apply(foreign)
    first.kill()
    kubectl("delete", "canaryroute", "checkout", "-n", operator_ns.routes, "--timeout=20s")
    assert f"graylane-route-{operator_ns.routes}-checkout" in route_configmaps(kubectl, operator_ns.config)
    second = start_operator()
    eventually(
        lambda: set(route_configmaps(kubectl, operator_ns.config)) == {"not-ours"},
        what="the orphaned ConfigMap is swept (and the one we did not create is left alone)",
    )
    assert "Swept orphaned route ConfigMaps" in second.log()


def test_killed_operator_converges_and_a_restart_writes_nothing(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    kubectl("apply", "-n", operator_ns.routes, "-f", str(EXAMPLES / "upstreams.yaml"))
    names = [f"route-{i}" for i in range(8)]
    first = start_operator()
    kubectl.apply([_route(name, operator_ns.routes, weight=i) for i, name in enumerate(names)])
    eventually(
        lambda: route_configmaps(kubectl, operator_ns.config), what="the first ConfigMap", interval=0.05
    )
    first.kill()  # mid-way: some routes compiled, some not, maybe a ConfigMap written without its status
    second = start_operator()
    for name in names:
        eventually(lambda name=name: ready(kubectl, operator_ns.routes, name), what=f"{name} Ready")
    settled = _versions(kubectl, operator_ns)
    assert len(settled["configmaps"]) == len(names)
    for i, name in enumerate(names):
        assert document_of(kubectl, operator_ns, name)["weight"] == i  # type: ignore[index]
    second.stop()
    third = start_operator()
    eventually(lambda: "Resynced 8 routes" in third.log(), what="the restarted operator swept and resynced")
    eventually(
        lambda: (idle_figures(third) or (0, 0))[0] >= 2 * len(names),
        what="and reconciled every route twice (its first listing, the resync)",
    )
    assert _versions(kubectl, operator_ns) == settled, "reconciling again must write nothing"
    figures = idle_figures(third)
    assert figures is not None and figures[1] == 0, f"no API write at all: {figures}"


def test_forged_status_is_recomputed(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    start_operator()
    apply_examples(kubectl, operator_ns.routes)
    eventually(lambda: ready(kubectl, operator_ns.routes), what="Ready")
    forged = '{"status":{"phase":"Promoted","canaryWeight":100,"conditions":[]}}'
    kubectl("patch", "canaryroute", "checkout", "-n", operator_ns.routes, "--subresource=status",
            "--type", "merge", "-p", forged)  # fmt: skip
    obj = eventually(lambda: ready(kubectl, operator_ns.routes), what="the status is recomputed")
    assert obj["status"]["phase"] == "Ready" and obj["status"]["canaryWeight"] == 5
    assert document_of(kubectl, operator_ns)["weight"] == 5  # type: ignore[index]


def _route(name: str, namespace: str, *, weight: float) -> dict[str, Any]:
    return {
        "apiVersion": "graylane.io/v1alpha1",
        "kind": "CanaryRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": [f"{name}.example.com"],
            "stable": "checkout-v1",
            "canary": "checkout-v2",
            "weight": weight,
        },
    }


def _versions(kubectl: Kubectl, ns: OperatorNamespaces) -> dict[str, dict[str, str]]:
    routes = kubectl.json("get", "canaryroutes", "-n", ns.routes)["items"]
    return {
        "configmaps": {
            n: c["metadata"]["resourceVersion"] for n, c in route_configmaps(kubectl, ns.config).items()
        },
        "routes": {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in routes},
    }


def test_a_route_recreated_while_the_operator_was_down_takes_over_its_configmap(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    first = start_operator()
    apply_examples(kubectl, operator_ns.routes)
    old = eventually(lambda: ready(kubectl, operator_ns.routes), what="Ready")
    first.kill()
    kubectl("delete", "canaryroute", "checkout", "-n", operator_ns.routes)
    kubectl("apply", "-n", operator_ns.routes, "-f", str(EXAMPLES / "canaryroute.yaml"))  # same name, new UID
    start_operator()
    new = eventually(lambda: ready(kubectl, operator_ns.routes), what="the new route is Ready")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    name = f"graylane-route-{operator_ns.routes}-checkout"
    cms = eventually(
        lambda: (
            (cms := route_configmaps(kubectl, operator_ns.config))
            and cms[name]["metadata"]["labels"]["graylane.io/route-uid"] == new["metadata"]["uid"]
            and cms
        ),
        what="the ConfigMap now belongs to the new route",
    )
    assert set(cms) == {name} and new["status"]["configMap"].endswith("/" + name)
    assert route_document(cms[name])["route"]["uid"] == new["metadata"]["uid"]
