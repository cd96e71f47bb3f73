# ruff: noqa: E501  (one-line manifests read better than wrapped ones)
"""The Gateway API controller against the real kube-apiserver (the pinned standard-channel CRDs installed
from local files), with the real operator process and, for steering, a real kube-mode Gateway proxy.

Aspects: GatewayClass Accepted/SupportedVersion/supportedFeatures; a Gateway's own Deployment + Service
(its ClusterIP is the Gateway's address), listener status and attachedRoutes; route ConfigMaps the proxy
serves; Argo Rollouts / Flagger steering (JSON-patch backendRefs weights, add and remove a header-match rule)
served by the proxy and the route's status following the generation; every bad input of
tests/bad_inputs/gateway-api/ with the spec's reason while the good route keeps being served; deleting a
Gateway removes what was provisioned for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from gatewayrig import (
    GatewayProxy,
    addressed,
    apply_text,
    bad_input_files,
    conditions_of,
    current,
    expectations,
    gateway,
    get,
    http_route,
    owned,
    route_configmaps,
    service,
    when,
)
from kopfharness import OperatorNamespaces
from waiting import eventually

from graylane.gateway import features
from graylane.gateway.provision import PROPAGATED_ANNOTATION

pytestmark = pytest.mark.usefixtures("gateway_api_crds")


def base(kubectl: Kubectl, ns: str, klass: str) -> None:
    named = {"name": "named", "port": 80, "protocol": "HTTP", "hostname": "named.example.com"}
    good = http_route("good", [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": "web-v1", "port": 8080}]}])  # fmt: skip
    kubectl.apply(
        [
            service("web-v1"),
            service("web-v2"),
            gateway("gw", klass, {"name": "http", "port": 80, "protocol": "HTTP"}, named),
            good,
        ],
        "-n",
        ns,
    )


def test_class_gateway_route_and_what_is_provisioned(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: Any, klass: str
) -> None:
    ns, cfg = operator_ns.routes, operator_ns.config
    base(kubectl, ns, klass)
    start_operator("--gateway-api")
    gc = eventually(when(kubectl, "gatewayclass", klass, None), what="GatewayClass status")
    assert conditions_of(gc) == {
        "Accepted": ("True", "Accepted"),
        "SupportedVersion": ("True", "SupportedVersion"),
    }
    assert gc["status"]["supportedFeatures"] == features.supported_features()
    assert {"name": "HTTPRouteRequestMirror"} in gc["status"]["supportedFeatures"]
    svc = eventually(lambda: owned(kubectl, "services", cfg), what="the Gateway's Service")[0]
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(80, 8080)]
    gw = eventually(when(kubectl, "gateway", "gw", ns, addressed), what="Gateway address")
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": svc["spec"]["clusterIP"]}]
    assert conditions_of(gw)["Accepted"] == ("True", "Accepted")
    assert conditions_of(gw)["Programmed"] == ("False", "Pending"), (
        "no node in this tier: no proxy pod becomes Ready"
    )
    listeners = {x["name"]: x for x in gw["status"]["listeners"]}
    assert listeners["http"]["attachedRoutes"] == 1 and listeners["named"]["attachedRoutes"] == 1
    assert conditions_of(gw, "http")["ResolvedRefs"] == ("True", "ResolvedRefs")
    (deploy,) = owned(kubectl, "deployments", cfg)
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    uid = gw["metadata"]["uid"]
    assert container["args"][:2] == ["--drain-delay", "2"], "the chart's template arguments come first"
    assert (
        "--route-selector" in container["args"]
        and f"graylane.io/gateway-route=true,graylane.io/gateway-uid={uid}" in container["args"]
    )
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    route = eventually(when(kubectl, "httproute", "good", ns), what="route status")
    assert conditions_of(route) == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }
    (cm,) = route_configmaps(kubectl, cfg)
    (listeners,) = route_configmaps(kubectl, cfg, "Gateway")  # every listener, with or without routes
    assert [e.get("hostname") for e in json.loads(listeners["data"]["route.json"])["listeners"]] == [
        None,
        "named.example.com",
    ]
    doc = json.loads(cm["data"]["route.json"])
    assert doc["route"]["kind"] == "HTTPRoute" and doc["listeners"] == [  # one entry per listener
        {"port": 80, "hosts": []}, {"port": 80, "hosts": ["named.example.com"], "hostname": "named.example.com"}]  # fmt: skip
    assert doc["upstreams"] == {f"web-v1.{ns}.8080": {"url": f"http://web-v1.{ns}.svc:8080"}}
    infrastructure_follows(kubectl, ns, cfg, klass)
    kubectl("delete", "gateway", "gw", "-n", ns)
    eventually(
        lambda: not owned(kubectl, "deployments", cfg) and not owned(kubectl, "services", cfg),
        what="the Gateway's objects removed",
    )
    eventually(
        lambda: (
            not kubectl.json("get", "configmaps", "-n", cfg, "-l", "graylane.io/gateway-route=true")["items"]
        ),
        what="its route ConfigMaps removed",
    )


def infrastructure_follows(kubectl: Kubectl, ns: str, cfg: str, klass: str) -> None:
    """spec.infrastructure's labels and annotations reach the Service, the Deployment and its pods, next to
    GEP-1762's gateway-name / gateway-class-name labels; once removed from the Gateway, they are removed."""

    def metas() -> list[dict[str, Any]]:
        deployments = owned(kubectl, "deployments", cfg)
        objects = owned(kubectl, "services", cfg) + deployments
        return [o["metadata"] for o in objects] + [d["spec"]["template"]["metadata"] for d in deployments]

    def carried(meta: dict[str, Any]) -> tuple[str | None, str | None, bool]:
        notes = meta.get("annotations") or {}
        return (
            meta["labels"].get("team"),
            notes.get("lb.example/internal"),
            PROPAGATED_ANNOTATION in notes,
        )

    group = "gateway.networking.k8s.io"
    well_known = {f"{group}/gateway-name": "gw", f"{group}/gateway-class-name": klass}
    assert all(well_known.items() <= m["labels"].items() for m in metas())
    infra = {"labels": {"team": "shop"}, "annotations": {"lb.example/internal": "yes"}}
    patch = json.dumps({"spec": {"infrastructure": infra}})
    kubectl("patch", "gateway", "gw", "-n", ns, "--type=merge", "-p", patch)
    eventually(lambda: all(carried(m) == ("shop", "yes", True) for m in metas()), what="the metadata on all")
    kubectl("patch", "gateway", "gw", "-n", ns, "--type=merge", "-p", '{"spec": {"infrastructure": null}}')
    eventually(
        lambda: all(carried(m) == (None, None, False) for m in metas()), what="the dropped metadata removed"
    )
    assert all(well_known.items() <= m["labels"].items() for m in metas())


def test_argo_and_flagger_style_steering_is_served(
    kubectl: Kubectl,
    operator_ns: OperatorNamespaces,
    start_operator: Any,
    klass: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """What Argo Rollouts' Gateway API plugin and Flagger's gatewayapi provider do to an HTTPRoute."""
    ns, cfg = operator_ns.routes, operator_ns.config
    base(kubectl, ns, klass)
    canary = http_route("checkout", [{"matches": [{"path": {"type": "PathPrefix", "value": "/checkout"}}],
                                      "backendRefs": [{"name": "web-v1", "port": 8080, "weight": 100},
                                                      {"name": "web-v2", "port": 8080, "weight": 0}]}])  # fmt: skip
    kubectl.apply(canary, "-n", ns)
    start_operator("--gateway-api")
    gw = eventually(when(kubectl, "gateway", "gw", ns, addressed), what="Gateway address")
    proxy = GatewayProxy.of(gw, cfg, kubeconfig, tmp_path / "gateway-proxy.log")
    try:
        served = lambda: {r["route"] for r in (proxy.routes() or {}).get("routes", [])}  # noqa: E731
        eventually(lambda: {f"{ns}/good", f"{ns}/checkout"} <= served(), what="the proxy serves both routes")
        assert proxy.explain("/checkout", sample=0.99)["upstream"] == f"web-v1.{ns}.8080"
        # Argo Rollouts: a JSON patch of the weights
        json_patch(kubectl, ns, {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 80},
                   {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 20})  # fmt: skip
        picks(proxy, "/checkout", 0.9, f"web-v2.{ns}.8080", what="20% to web-v2")
        assert proxy.explain("/checkout", sample=0.79)["upstream"] == f"web-v1.{ns}.8080"
        # Flagger: a header-match rule in front, then removed again
        rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/checkout"}, "headers": [{"name": "X-Canary", "value": "insider"}]}],
                "backendRefs": [{"name": "web-v2", "port": 8080}]}  # fmt: skip
        json_patch(kubectl, ns, {"op": "add", "path": "/spec/rules/0", "value": rule})
        picks(
            proxy,
            "/checkout",
            0.0,
            f"web-v2.{ns}.8080",
            what="the header rule served",
            **{"X-Canary": "insider"},
        )
        json_patch(kubectl, ns, {"op": "remove", "path": "/spec/rules/0"})
        picks(
            proxy,
            "/checkout",
            0.0,
            f"web-v1.{ns}.8080",
            what="the header rule gone",
            **{"X-Canary": "insider"},
        )
        route = eventually(when(kubectl, "httproute", "checkout", ns), what="status of the last generation")
        assert route["metadata"]["generation"] == 4 and conditions_of(route)["Accepted"] == (
            "True",
            "Accepted",
        )
        assert served() == {f"{ns}/good", f"{ns}/checkout", f"gateway:{ns}/gw"}, (
            "the route Graylane did not steer is untouched (and the Gateway's listeners document)"
        )
    finally:
        proxy.stop()
        print("--- gateway proxy:", *proxy.log_path.read_text(errors="replace").splitlines()[-30:], sep="\n")


def json_patch(kubectl: Kubectl, ns: str, *ops: dict[str, Any]) -> None:
    kubectl("patch", "httproute", "checkout", "-n", ns, "--type=json", "-p", json.dumps(list(ops)))


def picks(proxy: GatewayProxy, path: str, sample: float, upstream: str, *, what: str, **headers: str) -> None:
    """Within a second or so the proxy sends ``path`` (at ``sample``) to ``upstream``."""
    eventually(
        lambda: proxy.explain(path, sample=sample, **headers)["upstream"] == upstream, what=what, within=10
    )


def test_bad_input_gets_the_spec_reason_and_stops_nothing(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: Any, klass: str
) -> None:
    ns, cfg = operator_ns.routes, operator_ns.config
    base(kubectl, ns, klass)
    files = bad_input_files()
    assert len(files) >= 12
    for path in files:
        apply_text(kubectl, path.read_text().replace("{GATEWAY_CLASS_NAME}", klass), ns)
    op = start_operator("--gateway-api")
    expected = [(path.name, *e) for path in files for e in expectations(path)]
    assert len(expected) >= len(files)

    def missing() -> list[str]:
        out = []
        for name, kind, obj, listener, kind_of, status, reason in expected:
            found = kubectl.json("get", kind.lower(), obj, "-n", ns)
            got = conditions_of(found, listener).get(kind_of) if current(found) else None
            if got != (status, reason):
                out.append(
                    f"{name}: {kind}/{obj}{':' + listener if listener else ''} {kind_of} is {got}, not {(status, reason)}"
                )
        return out

    eventually(lambda: not missing(), what="every bad input's conditions", within=60)
    good = get(kubectl, "httproute", "good", ns)
    assert conditions_of(good) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    docs = {
        json.loads(cm["data"]["route.json"])["route"]["name"]
        for cm in kubectl.json("get", "configmaps", "-n", cfg, "-l", "graylane.io/gateway-route=true")[
            "items"
        ]
    }
    assert "good" in docs and "backend-missing" in docs, (
        "a route with an unresolved backend is still served (500 for its share)"
    )
    assert not docs & {"section-missing", "hostname-mismatch", "unsupported-filter", "not-allowed"}
    assert op.alive() and "Traceback" not in op.log()
