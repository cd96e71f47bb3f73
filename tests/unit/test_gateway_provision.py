# ruff: noqa: E501  (one-line expectations read better than wrapped ones)
"""What the controller provisions per Gateway (pure): names Kubernetes accepts, the Service's ports, the
proxies' Deployment from the chart's template, a ConfigMap per route document, checksums of the bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from graylane.config.document import load_route_document
from graylane.gateway import provision
from graylane.gateway.plan import GatewayPlan
from graylane.gateway.provision import CHECKSUM_ANNOTATION, GATEWAY_UID_LABEL
from tests.unit.gwworld import NS, gateway, http_route, listener, planned

TEMPLATE = {
    "metadata": {"labels": {"app.kubernetes.io/name": "graylane", "app.kubernetes.io/managed-by": "Helm"}},
    "spec": {"serviceAccountName": "g-proxy", "containers": [{"name": "proxy", "image": "p:1", "args": ["--workers=1"]}]},
}  # fmt: skip
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def test_every_http_port_gets_its_own_container_port() -> None:
    gw = gateway("gw", listener(), listener("alt", 8080), listener("s", 443, "HTTPS", certs=[{"group": "", "kind": "Secret", "name": "c"}]),
                 listener("more", 8090), listener("same-port", 8080, hostname="a.test"))  # fmt: skip
    plan = planned(gw, http_route("r", {"name": "gw"}), secrets={(NS, "c"): None}).gateways[(NS, "gw")]
    service = provision.service(plan, namespace="graylane-system")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 80, 8080), ("http-8080", 8080, 8081), ("http-8090", 8090, 8082), ("https", 443, 8443)]  # fmt: skip
    args = provision.deployment(plan, namespace="graylane-system", template=TEMPLATE)["spec"]["template"][
        "spec"
    ]["containers"][0]["args"]
    assert args[-10:] == ["--listener-port", "80", "--also-listen", "0.0.0.0:8081=8080", "--also-listen", "0.0.0.0:8082=8090",
                          "--listen-tls", "0.0.0.0:8443", "--tls-listener-port", "443"]  # fmt: skip


def test_names_fit_kubernetes() -> None:
    assert provision.object_name("infra", "same-namespace") == "graylane-gw-infra-same-namespace"
    long = provision.object_name("n" * 63, "gateway.with.dots." + "g" * 200)
    assert len(long) <= 63 and DNS_LABEL.fullmatch(long), long
    assert provision.object_name("a", "b.c") == "graylane-gw-a-b-c"
    cm = provision.route_configmap_name(long, "r" * 63, "x" * 253)
    assert len(cm) <= 253


def test_service_deployment_and_configmaps_of_a_gateway() -> None:
    gw = gateway(
        "gw", listener(), listener("s", 443, "HTTPS", certs=[{"group": "", "kind": "Secret", "name": "c"}])
    )
    plan = planned(gw, http_route("r", {"name": "gw"}), secrets={(NS, "c"): None}).gateways[(NS, "gw")]
    service = provision.service(plan, namespace="graylane-system")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 80, 8080),
        ("https", 443, 8443),
    ]
    assert service["spec"]["selector"] == {GATEWAY_UID_LABEL: "uid-gw"}
    deploy = provision.deployment(plan, namespace="graylane-system", template=TEMPLATE)
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "graylane-operator"
    assert (
        pod["metadata"]["labels"][GATEWAY_UID_LABEL] == "uid-gw"
        and pod["spec"]["serviceAccountName"] == "g-proxy"
    )
    assert pod["spec"]["containers"][0]["args"] == [
        "--workers=1", "--kube", "--namespace", "graylane-system",
        "--route-selector", "graylane.io/gateway-route=true,graylane.io/gateway-uid=uid-gw",
        "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9901", "--listener-port", "80",
        "--listen-tls", "0.0.0.0:8443", "--tls-listener-port", "443",
    ]  # fmt: skip
    assert TEMPLATE["spec"]["containers"][0]["args"] == ["--workers=1"], "the template is not changed"
    cm, listeners = provision.configmaps(plan, namespace="graylane-system")
    assert cm["metadata"]["labels"]["graylane.io/gateway-route"] == "true"
    assert json.loads(cm["data"]["route.json"])["route"]["name"] == "r"
    doc = json.loads(listeners["data"]["route.json"])  # every valid listener, even with no route attached
    assert listeners["metadata"]["name"] == "graylane-gw-infra-gw-listeners"
    assert (doc["route"]["kind"], doc["httpRules"], [(e["port"], e.get("hostname")) for e in doc["listeners"]]) == (
        "Gateway", [], [(80, None), (443, None)])  # fmt: skip
    load_route_document(doc)  # the proxies' loader accepts it
    again = provision.service(plan, namespace="graylane-system")
    assert (
        again["metadata"]["annotations"][CHECKSUM_ANNOTATION]
        == service["metadata"]["annotations"][CHECKSUM_ANNOTATION]
    )


def test_the_certificate_copies_are_the_secrets_the_documents_name() -> None:
    """Each valid HTTPS listener's first usable certificateRef is copied (tls.crt and tls.key only, as read)
    into the install namespace, labelled with the Gateway's UID, under the name its route documents give."""
    refs = [{"group": "", "kind": "Secret", "name": "c"}]
    gw = gateway(
        "gw",
        listener("s", 443, "HTTPS", certs=refs),
        listener("h", 443, "HTTPS", hostname="h.test", certs=[{**refs[0], "namespace": "certs"}]),  # no grant
        listener("missing", 443, "HTTPS", hostname="m.test", certs=[{**refs[0], "name": "gone"}]),
    )
    data = {(NS, "c"): {"tls.crt": "Y3J0", "tls.key": "a2V5", "extra": "eA=="}}
    plan = planned(
        gw, http_route("r", {"name": "gw"}), secrets={(NS, "c"): None, ("certs", "c"): None}
    ).gateways[(NS, "gw")]
    (copy,) = provision.secrets(plan, namespace="graylane-system", data=data)
    assert copy["type"] == "kubernetes.io/tls" and copy["data"] == {"tls.crt": "Y3J0", "tls.key": "a2V5"}
    meta = copy["metadata"]
    assert meta["namespace"] == "graylane-system" and meta["labels"][GATEWAY_UID_LABEL] == "uid-gw"
    assert meta["annotations"]["graylane.io/source-secret"] == "infra/c"
    (listener_entry,) = json.loads(provision.configmaps(plan, namespace="x")[0]["data"]["route.json"])[
        "listeners"
    ]
    assert listener_entry["tls"] == [{"secretName": meta["name"]}], "only the valid listener's certificate"
    assert provision.secrets(plan, namespace="graylane-system", data={}) == [], "no data: no copy"


def _provisioned(plan: GatewayPlan) -> list[dict[str, Any]]:
    data = {(NS, "c"): {"tls.crt": "Y3J0", "tls.key": "a2V5"}}
    return [
        provision.service(plan, namespace="graylane-system"),
        provision.deployment(plan, namespace="graylane-system", template=TEMPLATE),
        *provision.configmaps(plan, namespace="graylane-system"),
        *provision.secrets(plan, namespace="graylane-system", data=data),
    ]


def test_every_object_carries_the_gateways_name_class_and_infrastructure_metadata() -> None:
    """GEP-1762's gateway-name and gateway-class-name labels on everything provisioned (and the pods);
    spec.infrastructure's labels and annotations too, Graylane's own keys winning a collision."""
    infra = {"labels": {"team": "shop", GATEWAY_UID_LABEL: "forged"}, "annotations": {"lb.example/internal": "true"}}
    gw = gateway("gw", listener(), listener("s", 443, "HTTPS", certs=[{"group": "", "kind": "Secret", "name": "c"}]),
                 infrastructure=infra)  # fmt: skip
    plan = planned(gw, http_route("r", {"name": "gw"}), secrets={(NS, "c"): None}).gateways[(NS, "gw")]
    objects = _provisioned(plan)
    assert [o["kind"] for o in objects] == ["Service", "Deployment", "ConfigMap", "ConfigMap", "Secret"]
    metas = [o["metadata"] for o in objects] + [objects[1]["spec"]["template"]["metadata"]]
    for meta in metas:
        assert meta["labels"]["gateway.networking.k8s.io/gateway-name"] == "gw"
        assert meta["labels"]["gateway.networking.k8s.io/gateway-class-name"] == "graylane"
        assert meta["labels"]["team"] == "shop" and meta["labels"][GATEWAY_UID_LABEL] == "uid-gw"
        assert meta["annotations"]["lb.example/internal"] == "true"
    assert metas[2]["annotations"]["graylane.io/route"] == "infra/r", "an object's own annotations stay"
    assert metas[-1]["labels"]["app.kubernetes.io/name"] == "graylane", "the chart's pod labels stay"


def test_metadata_the_gateway_drops_is_removed_by_the_next_write() -> None:
    """A merge patch keeps the keys it does not name: the keys the Gateway gave (recorded on the object)
    and no longer gives are patched to null, on the object and its pod template; other keys are untouched."""
    infra = {"labels": {"team": "shop"}, "annotations": {"a.example/x": "1", "a.example/y": "2"}}
    before = planned(gateway("gw", infrastructure=infra), http_route("r", {"name": "gw"})).gateways[(NS, "gw")]
    after = planned(gateway("gw", infrastructure={"annotations": {"a.example/y": "3"}}),
                    http_route("r", {"name": "gw"})).gateways[(NS, "gw")]  # fmt: skip
    for have, body in zip(_provisioned(before), _provisioned(after), strict=True):
        have["metadata"]["labels"]["added-by-someone"] = "x"
        patch = provision.merge_patch(have, body)
        metas = [patch["metadata"]] + ([patch["spec"]["template"]["metadata"]] if body["kind"] == "Deployment" else [])
        for meta in metas:
            assert meta["labels"]["team"] is None and meta["annotations"]["a.example/x"] is None
            assert meta["annotations"]["a.example/y"] == "3" and "added-by-someone" not in meta["labels"]
            assert meta["annotations"][provision.PROPAGATED_ANNOTATION] is not None, "the new record"
        assert "team" not in body["metadata"]["labels"], "the body itself is not changed"
    cleared = planned(gateway("gw"), http_route("r", {"name": "gw"})).gateways[(NS, "gw")]
    for have, body in zip(_provisioned(before), _provisioned(cleared), strict=True):
        patch = provision.merge_patch(have, body)
        assert patch["metadata"]["annotations"][provision.PROPAGATED_ANNOTATION] is None, "no record left"
        assert patch["metadata"]["labels"]["team"] is None
    service = provision.service(cleared, namespace="n")
    assert provision.PROPAGATED_ANNOTATION not in service["metadata"]["annotations"]
    assert provision.merge_patch(service, service) == service, "nothing recorded: the body as it is"
