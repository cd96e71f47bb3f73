# ruff: noqa: E501  (one-line calls read better than wrapped ones)
"""A Gateway's proxy terminating TLS for its HTTPS listeners (schema-2 ``listeners[].tls``), on both servers,
with a real TLS client: the certificate is picked by the SNI name against each listener's hostname (exact,
wildcard, then the listener without hostname), whether or not the certificate names the host (the
Gateway's word; the client verifies); only the HTTPS port's listeners count (``--tls-listener-port``); the
routes of that port answer, 404 for an unknown host; a bad certificate leaves the last good one serving."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cluster.ports import free_port
from graylane.proxy.app import DATA_PLANE
from proxytest import LocalProxy, Upstream, gateway_doc, get_json, http_rule, start_local_proxy
from tlscerts import Ca, write_secret
from tlsclient import client_context, fingerprint, get
from waiting import eventually_async


@pytest.fixture
async def gw(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    """A Gateway's proxy as the operator starts it: port 80 plain, port 443 TLS (on free ports)."""
    (tmp_path / "routes").mkdir()
    (tmp_path / "secrets").mkdir()
    p = await start_local_proxy(tmp_path / "routes", server=server_kind, listener_port=80, tls_host="127.0.0.1",
                                tls_port=free_port(), tls_listener_port=443,
                                secrets_dir=tmp_path / "secrets")  # fmt: skip
    yield p
    await p.close()


def listener(hosts: list[str], secret: str, hostname: str | None = None, port: int = 443) -> dict[str, Any]:
    cert = {"secretName": secret, **({"hostname": hostname} if hostname else {})}
    return {"port": port, "hosts": hosts, "tls": [cert]}


async def test_each_https_listener_serves_its_certificate_by_sni(
    gw: LocalProxy, tmp_path: Path, stable: Upstream, canary: Upstream
) -> None:
    ca = Ca.create()
    certs = {name: ca.issue([f"{name}.gw.test"]) for name in ("any", "second", "wild", "other")}
    for name, (crt, key) in certs.items():
        write_secret(tmp_path / "secrets", f"gw-tls-{name}", crt, key)
    urls = {"v1": stable.url, "v2": canary.url}
    # the conformance Gateway's shape: a listener without hostname, one with, one wildcard, all on 443
    await gw.put(gateway_doc(urls, http_rule(), name="any",
                             listeners=[listener(["example.test"], "gw-tls-any")]), "any.json")  # fmt: skip
    await gw.put(gateway_doc(urls, http_rule(backends=[("v2", 1)]), name="second",
                             listeners=[listener(["second.test"], "gw-tls-second", "second.test")]), "second.json")  # fmt: skip
    await gw.put(gateway_doc(urls, http_rule(backends=[("v2", 1)]), name="wild",
                             listeners=[listener(["*.w.test"], "gw-tls-wild", "*.w.test")]), "wild.json")  # fmt: skip
    # another HTTPS port's listener and a plain-HTTP route: neither is this listener's
    await gw.put(gateway_doc(urls, http_rule(), name="other",
                             listeners=[listener(["other.test"], "gw-tls-other", "other.test", port=8443),
                                        {"port": 80, "hosts": ["plain.test"]}]), "other.json")  # fmt: skip
    port = int(gw.app[DATA_PLANE].tls_port)
    ctx = client_context(ca.pem, check_hostname=False)  # the certificates need not name the hosts
    served = {name: fingerprint(crt) for name, (crt, _) in certs.items()}

    async def answer(name: str) -> tuple[int, str, str | None]:
        got = await get(port, name, ctx)
        return got["status"], got["fingerprint"], got.get("svc")

    await eventually_async(
        lambda: _default_served(gw), what="the listener without hostname gives the default", within=10
    )
    assert await answer("example.test") == (200, served["any"], "stable")
    assert await answer("unknown.test") == (404, served["any"], None), "a certificate, then no route"
    assert await answer("second.test") == (200, served["second"], "canary")
    assert await answer("a.w.test") == (200, served["wild"], "canary")
    assert await answer("other.test") == (404, served["any"], None), "port 8443's listener is not this one"
    assert (await answer("plain.test"))[0] == 404, "a route of port 80 is not served on 443"
    routes = await get_json(gw.session, gw.admin + "/routes")
    assert {c["secret"] for c in routes["tls"]["certificates"]} == {
        "gw-tls-any",
        "gw-tls-second",
        "gw-tls-wild",
    }
    strict = client_context(ca.pem)  # a browser-like client accepts the one that names the host
    with pytest.raises(ssl.SSLCertVerificationError):
        await get(port, "example.test", strict)

    # a bad certificate for a listener: refused, the last good one keeps serving
    write_secret(
        tmp_path / "secrets", "gw-tls-second", b"-----BEGIN CERTIFICATE-----\nAAAA\n", certs["second"][1]
    )
    await eventually_async(
        lambda: _rejected(gw, "gw-tls-second"), what="the bad certificate refused", within=10
    )
    assert await answer("second.test") == (200, served["second"], "canary")


async def _default_served(gw: LocalProxy) -> bool:
    return gw.app[DATA_PLANE].state.tls.default is not None  # type: ignore[union-attr]


async def _rejected(gw: LocalProxy, secret: str) -> bool:
    routes = await get_json(gw.session, gw.admin + "/routes")
    return any(r["secret"] == secret for r in routes["tls"]["rejected"])
