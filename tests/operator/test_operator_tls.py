"""``spec.tls`` on the real control plane: the operator checks the route's ``kubernetes.io/tls`` Secret and
mirrors it into the install namespace (opt-in), a real ``graylane-proxy --kube --listen-tls`` serves it by
SNI, a rotation reaches new handshakes, every bad certificate of tests/bad_inputs/tls/ makes the route
``Ready=False`` with its reason while the mirror and the proxy keep the last good one, the mirror goes with
the route, and the private key is in no ConfigMap, Event, status, operator log, proxy log or ``/routes``."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.kubectl import Kubectl
from kopfharness import (
    OperatorNamespaces,
    OperatorProcess,
    ProxyProcess,
    condition,
    reason_is,
    route,
    route_configmaps,
    route_document,
)
from tlscerts import CORPUS, Ca, key_fragments, secret_object
from tlsclient import client_context, fingerprint, get
from waiting import eventually

from graylane.tls.certificate import CONDITIONS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"
HOSTS = ["checkout.example.com", "a.b.example.com"]  # the corpus' names
StartOperator = Callable[..., OperatorProcess]


def served_fingerprint(proxy: ProxyProcess, ca: Ca, host: str = HOSTS[0]) -> str | None:
    try:
        answer = asyncio.run(get(proxy.tls_port, host, client_context(ca.pem)))
    except (OSError, ssl.SSLError):
        return None
    return str(answer["fingerprint"])


def mirror(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    result = kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_tls_mirrored_served_rotated_refused_and_removed(
    kubectl: Kubectl,
    operator_ns: OperatorNamespaces,
    start_operator: StartOperator,
    kube_tls_proxy: ProxyProcess,
) -> None:
    ns, config = operator_ns.routes, operator_ns.config
    mirrored = f"graylane-tls-{ns}-shop"
    ca = Ca.create()
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "upstreams.yaml"))
    kubectl.apply(route("shop", ns, hosts=HOSTS, tls={"secretName": "shop-tls", "redirectHTTP": True}))
    off = start_operator()
    cond = eventually(lambda: reason_is(kubectl, ns, "shop", "SecretMirroringDisabled"), what="mirroring off")
    assert "spec.tls" in cond["message"] and "--mirror-tls-secrets" in cond["message"]
    # the ConfigMap is written anyway (plain HTTP routing works), naming the mirror, never a certificate
    written = eventually(lambda: route_configmaps(kubectl, config).get(f"graylane-route-{ns}-shop"),
                         what="the ConfigMap")  # fmt: skip
    doc = route_document(written)
    assert doc["tls"] == {"secretName": mirrored, "hosts": HOSTS, "redirectHTTP": True}
    off.stop()
    operator = start_operator("--mirror-tls-secrets")
    cond = eventually(lambda: reason_is(kubectl, ns, "shop", "TLSSecretNotFound"), what="no Secret yet")
    assert "spec.tls.secretName" in cond["message"] and "shop-tls" in cond["message"]

    first = ca.issue(HOSTS)
    kubectl.apply(secret_object("shop-tls", *first, namespace=ns))
    eventually(lambda: reason_is(kubectl, ns, "shop", "Compiled"), what="Ready once the certificate is good")
    copy = eventually(lambda: mirror(kubectl, config, mirrored), what="the mirror")
    assert copy["type"] == "kubernetes.io/tls"
    assert copy["metadata"]["labels"]["graylane.io/tls-secret"] == "true"
    assert base64.b64decode(copy["data"]["tls.crt"]) == first[0]
    eventually(lambda: served_fingerprint(kube_tls_proxy, ca) == fingerprint(first[0]), what="served by SNI")

    second = ca.issue(HOSTS)  # what cert-manager does every few weeks
    start = time.monotonic()
    kubectl.apply(secret_object("shop-tls", *second, namespace=ns))
    eventually(lambda: served_fingerprint(kube_tls_proxy, ca) == fingerprint(second[0]), what="rotated",
               interval=0.05)  # fmt: skip
    print(f"rotation: Secret applied -> served on new handshakes in {time.monotonic() - start:.2f}s")

    _every_bad_certificate(kubectl, ns, config, mirrored, kube_tls_proxy, ca, good=second)

    _no_key_anywhere(kubectl, ns, config, kube_tls_proxy, operator, keys=[first[1], second[1]])
    kubectl("delete", "canaryroute", "shop", "-n", ns)
    eventually(lambda: mirror(kubectl, config, mirrored) is None, what="the mirror goes with its route")


def _every_bad_certificate(kubectl: Kubectl, ns: str, config: str, mirrored: str, proxy: ProxyProcess,
                           ca: Ca, *, good: tuple[bytes, bytes]) -> None:  # fmt: skip
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        case = dict(line.split(": ", 1) for line in (folder / "case.txt").read_text().splitlines())
        if case["reason"] == "not-found":
            kubectl("delete", "secret", "shop-tls", "-n", ns)
        else:
            crt, key = (folder / "tls.crt").read_bytes(), (folder / "tls.key").read_bytes()
            kubectl.apply(secret_object("shop-tls", crt, key, namespace=ns))
        reason = CONDITIONS[case["reason"]]
        cond = eventually(lambda r=reason: reason_is(kubectl, ns, "shop", r), what=f"{folder.name}: {reason}")
        message = cond["message"]
        assert case["path"] in message or case["reason"] == "not-found", (folder.name, message)
        copy = mirror(kubectl, config, mirrored)
        assert copy is not None and base64.b64decode(copy["data"]["tls.crt"]) == good[0], folder.name
        assert served_fingerprint(proxy, ca) == fingerprint(good[0]), folder.name  # nothing went down
        kubectl.apply(secret_object("shop-tls", *good, namespace=ns))
        eventually(lambda: reason_is(kubectl, ns, "shop", "Compiled"), what=f"{folder.name}: good again")


def _no_key_anywhere(kubectl: Kubectl, ns: str, config: str, proxy: ProxyProcess, operator: OperatorProcess,
                     *, keys: list[bytes]) -> None:  # fmt: skip
    with urllib.request.urlopen(proxy.admin + "/routes", timeout=5) as resp:
        routes = resp.read().decode()
    places = {
        "the ConfigMaps": kubectl("get", "configmaps", "-n", config, "-o", "json").stdout,
        "the Events": kubectl("get", "events", "-n", ns, "-o", "json").stdout,
        "the route": json.dumps(kubectl.json("get", "canaryroute", "shop", "-n", ns)),
        "/routes": routes,
        "the operator log": operator.log(),
        "the proxy log": proxy.log_path.read_text(errors="replace"),
    }
    assert "tls-shop" in places["/routes"] or "graylane-tls" in places["/routes"]
    for key in keys:
        for fragment in key_fragments(key):
            for where, text in places.items():
                assert fragment.decode() not in text, f"private key material in {where}"
    assert condition(kubectl, ns, "shop")["reason"] == "Compiled"
