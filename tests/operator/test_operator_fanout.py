"""The route controller against the real control plane: what one Upstream change writes, and nothing else.

An Upstream shared by some routes changes: exactly those routes are compiled again and written (their
ConfigMap and their status), the Upstream's own status once, and no other route's ConfigMap or status moves
(resourceVersions; the operator's own count of API writes). An Upstream that a route's
``versionRouting.upstreamSelector`` selects by label reaches that route alone; an Upstream whose status
alone is touched writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.kubectl import Kubectl
from kopfharness import OperatorNamespaces, OperatorProcess, idle_figures, route_configmaps, route_document
from waiting import eventually

StartOperator = Callable[..., OperatorProcess]
SHARED, ALONE = [f"shared-{i}" for i in range(4)], [f"alone-{i}" for i in range(4)]


def upstream(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "graylane.io/v1alpha1", "kind": "Upstream",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"service": {"name": name, "port": 8080}, "timeoutSeconds": 30}}  # fmt: skip


def route(name: str, namespace: str, canary: str, **spec: Any) -> dict[str, Any]:
    body = {"hosts": [f"{name}.example.com"], "stable": f"{name}-v1", "canary": canary, "weight": 10}
    return {"apiVersion": "graylane.io/v1alpha1", "kind": "CanaryRoute",
            "metadata": {"name": name, "namespace": namespace}, "spec": body | spec}  # fmt: skip


def versions(kubectl: Kubectl, ns: OperatorNamespaces) -> dict[str, str]:
    routes = kubectl.json("get", "canaryroutes", "-n", ns.routes)["items"]
    found = {f"route/{r['metadata']['name']}": r["metadata"]["resourceVersion"] for r in routes}
    configmaps = route_configmaps(kubectl, ns.config)
    return found | {f"configmap/{n}": c["metadata"]["resourceVersion"] for n, c in configmaps.items()}


def all_ready(kubectl: Kubectl, namespace: str, count: int) -> bool:
    items = kubectl.json("get", "canaryroutes", "-n", namespace)["items"]
    ready = 0
    for item in items:
        status = item.get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        ready += (
            conditions.get("Ready") == "True"
            and status.get("observedGeneration") == item["metadata"]["generation"]
        )
    return ready == count


def settle(proc: OperatorProcess, kubectl: Kubectl, ns: OperatorNamespaces, count: int) -> tuple[int, int]:
    """Every route Ready and the operator idle: its (reconciles, writes) and nothing moving for a pass."""
    eventually(lambda: all_ready(kubectl, ns.routes, count), what=f"{count} routes Ready")
    return eventually(lambda: _still(proc), what="the operator idle")


def _still(proc: OperatorProcess) -> tuple[int, int] | None:
    figures = idle_figures(proc)
    return figures if figures is not None and proc.log().rstrip().endswith("since start)") else None


def test_a_shared_upstream_change_writes_its_routes_and_nothing_else(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    ups = [upstream("canary-shared", ns)] + [upstream(f"{n}-v1", ns) for n in SHARED + ALONE]
    ups += [upstream(f"{n}-v2", ns) for n in ALONE]
    kubectl.apply(ups)
    kubectl.apply([route(n, ns, "canary-shared") for n in SHARED] + [route(n, ns, f"{n}-v2") for n in ALONE])
    proc = start_operator()
    _, writes = settle(proc, kubectl, operator_ns, len(SHARED + ALONE))
    before = versions(kubectl, operator_ns)
    kubectl(
        "patch",
        "upstream",
        "canary-shared",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        '{"spec":{"timeoutSeconds":45}}',
    )

    def rewritten() -> bool:
        cms = route_configmaps(kubectl, operator_ns.config)
        docs = [route_document(cms[f"graylane-route-{ns}-{n}"]) for n in SHARED]
        return all(d["upstreams"]["canary-shared"]["timeoutSeconds"] == 45 for d in docs)

    eventually(rewritten, what="every route of the shared Upstream recompiled")
    eventually(lambda: all_ready(kubectl, ns, len(SHARED + ALONE)), what="and Ready with its new checksum")
    after_writes = eventually(
        lambda: (f := _still(proc)) is not None and f[1] > writes and f, what="the operator idle again"
    )
    after = versions(kubectl, operator_ns)
    moved = {k for k in before if after.get(k) != before[k]}
    expected = {f"route/{n}" for n in SHARED} | {f"configmap/graylane-route-{ns}-{n}" for n in SHARED}
    assert moved == expected, "the routes of the shared Upstream, and no other"
    # a ConfigMap and a status per affected route, and the Upstream's observedGeneration
    assert after_writes[1] - writes == 2 * len(SHARED) + 1, after_writes


def test_a_selected_upstream_reaches_its_route_alone_and_a_status_touch_writes_nothing(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    kubectl.apply(
        [upstream(f"{n}-v1", ns, app=n) for n in ALONE] + [upstream(f"{n}-v2", ns, app=n) for n in ALONE]
    )
    selecting = {
        "header": "X-Version",
        "metadataKey": "version",
        "upstreamSelector": {"matchLabels": {"app": ""}},
    }
    routes = []
    for n in ALONE:
        selector = dict(selecting, upstreamSelector={"matchLabels": {"app": n}})
        routes.append(route(n, ns, f"{n}-v2", versionRouting=selector))
    kubectl.apply(routes)
    proc = start_operator()
    _, writes = settle(proc, kubectl, operator_ns, len(ALONE))
    before = versions(kubectl, operator_ns)
    extra = upstream("alone-0-v3", ns, app="alone-0")
    extra["spec"]["metadata"] = {"version": "v3"}
    kubectl.apply([extra])

    def selected() -> bool:
        document = route_document(
            route_configmaps(kubectl, operator_ns.config)[f"graylane-route-{ns}-alone-0"]
        )
        return "alone-0-v3" in document["upstreams"]

    eventually(selected, what="the new Upstream selected by alone-0")
    settled = eventually(lambda: (f := _still(proc)) is not None and f[1] > writes and f, what="idle again")
    moved = {k for k, v in versions(kubectl, operator_ns).items() if before.get(k) != v}
    assert moved == {"route/alone-0", f"configmap/graylane-route-{ns}-alone-0"}
    kubectl("patch", "upstream", "alone-1-v1", "-n", ns, "--subresource=status", "--type", "merge",
            "-p", '{"status":{"target":"forged"}}')  # fmt: skip
    eventually(
        lambda: kubectl.json("get", "upstream", "alone-1-v1", "-n", ns)["status"]["target"] != "forged",
        what="the Upstream's forged status written back",
    )
    final = eventually(lambda: (f := _still(proc)) is not None and f[1] > settled[1] and f, what="idle")
    assert final[1] == settled[1] + 1, "the Upstream status alone, no route"
