"""A real TLS client for the tests (Python's ``ssl``, i.e. OpenSSL) that names the SNI it asks for, and a
minimal keep-alive HTTP/1.1 exchange over it (status, headers, body; the echo upstream's JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def client_context(ca_pem: bytes, *, versions: tuple[ssl.TLSVersion, ssl.TLSVersion] | None = None,
                   alpn: list[str] | None = None, check_hostname: bool = True) -> ssl.SSLContext:  # fmt: skip
    """A client that trusts the test CA and checks the server's name, as a browser does."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.check_hostname = check_hostname
    if versions is not None:
        ctx.minimum_version, ctx.maximum_version = versions
    ctx.set_alpn_protocols(alpn or ["http/1.1"])
    return ctx


def fingerprint(crt_pem: bytes) -> str:
    """SHA-256 of the leaf certificate's DER (what ``/routes`` shows as ``sha256``)."""
    leaf = x509.load_pem_x509_certificate(crt_pem)
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass
class TlsConn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def sslobj(self) -> ssl.SSLObject:
        obj = self.writer.get_extra_info("ssl_object")
        assert obj is not None
        return obj  # type: ignore[no-any-return]

    @property
    def fingerprint(self) -> str:
        der = self.sslobj.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()

    async def request(self, host: str, path: str = "/", headers: str = "", method: str = "GET"
                      ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        """One keep-alive request; the answer's status, headers (lower-case names) and body."""
        self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        size = 0 if method == "HEAD" else int(fields.get("content-length", "0"))
        return status, fields, await self.reader.readexactly(size)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def connect(port: int, name: str | None, ctx: ssl.SSLContext) -> TlsConn:
    """A TLS connection to 127.0.0.1:``port`` asking for ``name`` by SNI (None: no SNI at all)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=name), timeout=10
    )
    return TlsConn(reader, writer)


async def get(
    port: int, name: str, ctx: ssl.SSLContext, path: str = "/", headers: str = ""
) -> dict[str, Any]:
    """A fresh connection, one request: ``status``, ``fingerprint`` (of the served certificate), ``body``
    (text), and the fields of a JSON body (the echo upstream's)."""
    conn = await connect(port, name, ctx)
    try:
        status, _, body = await conn.request(name, path, headers)
    finally:
        await conn.close()
    answer: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        loaded = json.loads(body)
        answer = loaded if isinstance(loaded, dict) else {}
    return {
        **answer,
        "status": status,
        "fingerprint": conn.fingerprint,
        "body": body.decode("utf-8", "replace"),
    }


async def refused_alert(port: int, name: str | None, ctx: ssl.SSLContext) -> str:
    """The handshake's failure as the client saw it (the test fails if it succeeds)."""
    try:
        conn = await connect(port, name, ctx)
    except ssl.SSLError as exc:
        return str(exc.reason or exc)
    await conn.close()
    raise AssertionError(f"the handshake for {name!r} succeeded")
