"""An https:// upstream: the proxy verifies its certificate (system trust store, here ``SSL_CERT_FILE``)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from proxytest import Upstream, dump, echo_app, route_doc, spawn_proxy, write_atomic


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graylane test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "upstream.crt", tmp / "upstream.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.fixture
async def tls_upstream(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    runner = web.AppRunner(echo_app("tls"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", cert
    await runner.cleanup()


async def test_https_upstream_verified_with_the_trust_store(
    tmp_path: Path, tls_upstream: tuple[str, Path], canary: Upstream, server_kind: str
) -> None:
    url, cert = tls_upstream
    conf = tmp_path / "routes"
    conf.mkdir()
    write_atomic(conf / "route.json", dump(route_doc(url, canary.url)))
    trusted = spawn_proxy(
        conf, tmp_path / "trusted.log", env={"SSL_CERT_FILE": str(cert)}, server=server_kind
    )
    untrusted = spawn_proxy(
        conf, tmp_path / "untrusted.log", env={"SSL_CERT_FILE": "/nonexistent"}, server=server_kind
    )
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(trusted.url + "/over-tls") as resp:
                assert resp.status == 200
                info = await resp.json()
            assert info["svc"] == "tls" and info["path"] == "/over-tls"
            async with s.get(untrusted.url + "/") as resp:  # an unverifiable certificate is not talked to
                assert resp.status == 502
    finally:
        assert trusted.terminate() == 0
        assert untrusted.terminate() == 0
