# ruff: noqa: E501  (one-line manifests read better than wrapped ones)
"""HTTPS listeners of Gateways on the real control plane: the operator checks each listener's
``certificateRefs`` (cross-namespace only through a ReferenceGrant), copies the usable Secrets next to the
Gateway's proxies, names them in the route documents' ``listeners[].tls`` by listener hostname, starts the
proxies with ``--listen-tls`` / ``--tls-listener-port``; a real kube-mode Gateway proxy serves each
listener's certificate by SNI; a rotated Secret reaches the copy; a Secret gone bad makes its listener
``ResolvedRefs=False, InvalidCertificateRef`` while the other listeners keep serving; the private key is in no
ConfigMap, status or log."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from gatewayrig import (
    GatewayProxy,
    conditions_of,
    current,
    gateway,
    get,
    http_route,
    owned,
    route_configmaps,
    service,
    when,
)
from kopfharness import OperatorNamespaces
from tlscerts import Ca, key_fragments, secret_object
from tlsclient import client_context, fingerprint
from tlsclient import get as tls_get
from waiting import eventually

from graylane.gateway.naming import mirror_name, object_name
from graylane.gateway.objects import ObjectRef

pytestmark = pytest.mark.usefixtures("gateway_api_crds")


def https(
    name: str, secret: str, hostname: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    ref = {"group": "", "kind": "Secret", "name": secret, **({"namespace": namespace} if namespace else {})}
    return {"name": name, "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [ref]},
            **({"hostname": hostname} if hostname else {})}  # fmt: skip


def grant(ns: str, source_ns: str, secret: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": "certs", "namespace": ns},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": source_ns}],
                     "to": [{"group": "", "kind": "Secret", "name": secret}]}}  # fmt: skip


@pytest.fixture
def certs_ns(kubectl: Kubectl, operator_ns: OperatorNamespaces) -> Any:
    name = f"certs-{operator_ns.routes}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_https_listeners_get_their_certificates_copied_and_served(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: Any, klass: str, certs_ns: str,
    kubeconfig: Path, tmp_path: Path,
) -> None:  # fmt: skip
    ns, cfg = operator_ns.routes, operator_ns.config
    ca = Ca.create()
    local, site, other = (ca.issue([f"{n}.example.com"]) for n in ("local", "site", "other"))
    kubectl.apply([secret_object("local", *local, namespace=ns), secret_object("site", *site, namespace=certs_ns),
                   secret_object("other", *other, namespace=certs_ns), grant(certs_ns, ns, "site")])  # fmt: skip
    listeners = [https("https", "local"), https("https-b", "site", "b.example.com", certs_ns),
                 https("https-denied", "other", "d.example.com", certs_ns)]  # fmt: skip
    route = http_route("web", [{"backendRefs": [{"name": "web-v1", "port": 8080}]}], gateway="secure",
                       hostnames=["a.example.com", "b.example.com"])  # fmt: skip
    kubectl.apply([service("web-v1"), gateway("secure", klass, *listeners), route], "-n", ns)
    op = start_operator("--gateway-api")

    gw = eventually(when(kubectl, "gateway", "secure", ns, lambda o: current(o) and (o.get("status") or {}).get("addresses")),
                    what="the Gateway's status")  # fmt: skip
    assert conditions_of(gw, "https")["ResolvedRefs"] == ("True", "ResolvedRefs")
    assert conditions_of(gw, "https-b")["ResolvedRefs"] == ("True", "ResolvedRefs"), "granted"
    assert conditions_of(gw, "https-denied")["ResolvedRefs"] == ("False", "RefNotPermitted")
    assert conditions_of(gw, "https-denied")["Programmed"] == ("False", "Invalid")
    assert conditions_of(gw, "https")["Programmed"] == ("False", "Pending"), (
        "no node here: no proxy pod Ready"
    )
    assert conditions_of(gw)["Accepted"] == ("True", "Accepted")

    gw_name = object_name(ns, "secure")
    copies = {mirror_name(gw_name, ObjectRef("", "Secret", ns, "local")): local,
              mirror_name(gw_name, ObjectRef("", "Secret", certs_ns, "site")): site}  # fmt: skip
    found = eventually(lambda: {s["metadata"]["name"]: s for s in owned(kubectl, "secrets", cfg)} if len(owned(kubectl, "secrets", cfg)) == 2 else None,
                       what="two certificate copies")  # fmt: skip
    assert set(found) == set(copies), "the denied listener's Secret is not copied"
    for name, (crt, key) in copies.items():
        assert found[name]["type"] == "kubernetes.io/tls"
        assert (
            base64.b64decode(found[name]["data"]["tls.crt"]) == crt
            and base64.b64decode(found[name]["data"]["tls.key"]) == key
        )
        assert found[name]["metadata"]["labels"]["graylane.io/gateway-uid"] == gw["metadata"]["uid"]
    (deploy,) = owned(kubectl, "deployments", cfg)
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-4:] == ["--listen-tls", "0.0.0.0:8443", "--tls-listener-port", "443"]
    (svc,) = owned(kubectl, "services", cfg)
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(443, 8443)]
    (cm,) = route_configmaps(kubectl, cfg)
    entries = json.loads(cm["data"]["route.json"])["listeners"]  # one per listener the route is attached to
    assert [(e["port"], e.get("hostname"), e["hosts"]) for e in entries] == [
        (443, None, ["a.example.com", "b.example.com"]), (443, "b.example.com", ["b.example.com"])]  # fmt: skip
    by_secret = {c["secretName"]: c.get("hostname") for e in entries for c in e["tls"]}
    assert by_secret == dict(zip(copies, [None, "b.example.com"], strict=True))

    proxy = GatewayProxy.of(gw, cfg, kubeconfig, tmp_path / "gateway-proxy.log", tls=True)
    try:
        proxy_tls = proxy.tls_port
        ctx = client_context(
            ca.pem, check_hostname=False
        )  # the test CA; the names are the listeners' business
        served = lambda host: asyncio.run(tls_get(proxy_tls, host, ctx))["fingerprint"]  # noqa: E731
        eventually(
            lambda: _serves(served, "b.example.com", site[0]), what="b.example.com's listener certificate"
        )
        assert served("a.example.com") == fingerprint(local[0]), "the listener without hostname: the default"
        assert served("d.example.com") == fingerprint(local[0]), (
            "the denied listener serves nothing of its own"
        )

        # rotation: the source Secret changes, the copy follows, new handshakes get the new certificate
        rotated = ca.issue(["site.example.com"])
        kubectl.apply(secret_object("site", *rotated, namespace=certs_ns))
        eventually(
            lambda: _serves(served, "b.example.com", rotated[0]), what="the rotated certificate served"
        )

        # gone bad: that listener is unresolved and dropped; the others keep serving
        kubectl.apply({**secret_object("site", b"not a certificate", rotated[1], namespace=certs_ns)})
        eventually(lambda: conditions_of(get(kubectl, "gateway", "secure", ns), "https-b").get("ResolvedRefs") == ("False", "InvalidCertificateRef"),
                   what="the bad certificate's listener unresolved")  # fmt: skip
        eventually(lambda: len(owned(kubectl, "secrets", cfg)) == 1, what="its copy removed")
        eventually(lambda: _serves(served, "a.example.com", local[0]), what="the other listener still served")
        assert conditions_of(get(kubectl, "gateway", "secure", ns), "https")["ResolvedRefs"] == (
            "True",
            "ResolvedRefs",
        )
    finally:
        proxy.stop()
    leaks = [f for crt_key in (local, site, other) for f in key_fragments(crt_key[1])]
    texts = [json.dumps(kubectl.json("get", "configmaps", "-n", cfg)), json.dumps(get(kubectl, "gateway", "secure", ns)),
             op.log(), proxy.log_path.read_text(errors="replace")]  # fmt: skip
    assert not [f for f in leaks for text in texts if f.decode() in text], "a private key leaked"


def _serves(served: Any, host: str, crt: bytes) -> bool:
    try:
        return bool(served(host) == fingerprint(crt))
    except (OSError, ValueError):  # no certificate for the name yet: the handshake is refused
        return False
