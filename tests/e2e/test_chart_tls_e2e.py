"""HTTPS end to end, as the chart deploys it with ``tls.enabled`` and ``proxy.tls.defaultSecret``.

The chart is installed with helm; the operator and the proxy run as local processes with the chart's own
container args (the proxy's ``--listen-tls`` moved to a loopback port) and with tokens of the chart's own
ServiceAccounts, so the Secret rights the chart grants for TLS are what is tested. Certificates are made in
the test: a route's ``kubernetes.io/tls`` Secret in the team namespace, the default one in the release
namespace. The README's route gets ``spec.tls`` and is reached over HTTPS by SNI.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.kubectl import Kubectl
from cluster.stack import LocalStack, http_get, installed, route_manifest, upstream_manifest, wait_until
from tlscerts import Ca, key_fragments, secret_object
from tlsclient import client_context, connect, fingerprint, get

NS = "e2e-tls-shop"
HOST = "checkout.example.com"
DEFAULT = "graylane-default-tls"


@pytest.fixture(scope="module")
def ca() -> Ca:
    return Ca.create()


@pytest.fixture(scope="module")
def stack(kubectl: Kubectl, helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work = tmp_path_factory.mktemp("tls-stack")
    values = {"tls": {"enabled": True}, "proxy": {"tls": {"defaultSecret": DEFAULT}}}
    s = LocalStack(kubectl=kubectl, helm=helm_bin, workdir=work, namespace="graylane-e2e-tls", watch=(NS,),
                   values=values)  # fmt: skip
    with installed(s):
        yield s


@pytest.fixture(scope="module")
def running(stack: LocalStack, ca: Ca) -> dict[str, Any]:
    keys = {"default": ca.issue(["default.example.test"]), "route": ca.issue([HOST])}
    stack.kubectl.apply(secret_object(DEFAULT, *keys["default"], namespace=stack.namespace))
    v1, v2 = stack.start_upstream("v1"), stack.start_upstream("v2")
    stack.start_operator()
    port, admin = stack.start_proxy()
    stack.kubectl.apply(
        [upstream_manifest("checkout-v1", v1, "v1"), upstream_manifest("checkout-v2", v2, "v2")], "-n", NS
    )
    route = route_manifest(0, host=HOST)
    route["spec"]["tls"] = {"secretName": "checkout-tls", "redirectHTTP": True}
    stack.kubectl.apply(route, "-n", NS)
    stack.kubectl.apply(secret_object("checkout-tls", *keys["route"], namespace=NS))
    tls = stack.tls_ports["proxy"]
    wait_until("HTTPS served for the route", lambda: _https(tls, ca)["status"] == 200, timeout=90)
    return {"port": port, "admin": admin, "tls": tls, "keys": keys}


def _https(port: int, ca: Ca, headers: str = "") -> dict[str, Any]:
    try:
        return asyncio.run(get(port, HOST, client_context(ca.pem), headers=headers))
    except (OSError, ssl.SSLError) as exc:
        return {"status": None, "error": repr(exc)}


def test_https_by_sni_with_the_route_certificate_and_the_same_routing(
    running: dict[str, Any], ca: Ca
) -> None:
    answer = _https(running["tls"], ca)
    assert answer["fingerprint"] == fingerprint(running["keys"]["route"][0])
    seen = Counter(_https(running["tls"], ca)["body"].strip() for _ in range(20))
    assert seen == Counter({"v1": 20})  # weight 0
    assert _https(running["tls"], ca, "X-Canary: true\r\n")["body"].strip() == "v2"  # the README's qa rule


def test_no_sni_gets_the_default_certificate(running: dict[str, Any], ca: Ca) -> None:
    async def peer() -> str:
        conn = await connect(running["tls"], None, client_context(ca.pem, check_hostname=False))
        try:
            return conn.fingerprint
        finally:
            await conn.close()

    assert asyncio.run(peer()) == fingerprint(running["keys"]["default"][0])


def test_plain_http_is_redirected_to_https(running: dict[str, Any]) -> None:
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(f"http://127.0.0.1:{running['port']}/cart?x=1", headers={"Host": HOST})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.build_opener(NoRedirect).open(request, timeout=5)
    assert caught.value.code == 308
    assert caught.value.headers["Location"] == f"https://{HOST}:{running['tls']}/cart?x=1"


def test_the_chart_grants_secrets_only_where_tls_needs_them(
    stack: LocalStack, running: dict[str, Any]
) -> None:
    proxy = stack.token_kubectl("proxy")
    assert proxy("get", "secret", DEFAULT, "-n", stack.namespace, "-o", "name").returncode == 0
    denied = proxy("get", "secrets", "-n", NS, check=False)  # the route namespace: never
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    operator = stack.token_kubectl("operator")
    assert operator("get", "secrets", "-n", NS, "--field-selector=type=kubernetes.io/tls").returncode == 0
    denied = operator("get", "secrets", "-n", "default", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr


def test_no_private_key_in_configmaps_routes_or_logs(stack: LocalStack, running: dict[str, Any]) -> None:
    status, routes = http_get(f"http://127.0.0.1:{running['admin']}/routes")
    assert status == 200 and b'"certificates"' in routes
    places = {
        "the ConfigMaps": stack.kubectl("get", "configmaps", "-n", stack.namespace, "-o", "json").stdout,
        "/routes": routes.decode(),
        **{f"the {name} log": proc.log.read_text(errors="replace") for name, proc in stack.procs.items()},
    }
    for key in (running["keys"]["route"][1], running["keys"]["default"][1]):
        for fragment in key_fragments(key):
            for where, text in places.items():
                assert fragment.decode() not in text, f"private key material in {where}"
