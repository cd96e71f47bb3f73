"""Server-side ``ssl.SSLContext``s for the HTTPS listener.

* Every context: TLS 1.2 and 1.3 only, Mozilla's "intermediate" TLS 1.2 cipher list (TLS 1.3 suites are
  OpenSSL's, which are the same), no compression, no renegotiation, ALPN ``http/1.1`` only (HTTP/2 is
  advertised when it is served, not before).
* The listener's context carries no certificate: its SNI callback swaps in the context of the name the client
  asked for (exact, then wildcard; :meth:`graylane.proxy.tls.certs.CertStore.lookup`), or the default one.
  A connection keeps the context it got, so a rotation (a new table) only changes new handshakes.
* No context for the name (or no SNI and no default): the handshake fails with the ``unrecognized_name``
  alert. asyncio's and uvloop's SSL protocols close a connection whose handshake failed without sending
  what OpenSSL queued, the alert included; :class:`ServerSSLObject` reports that one failure as "wants
  more input" instead, which makes both flush the alert before they read again (the client then closes,
  or the handshake timeout does). ``tests/proxy/test_tls.py`` checks the alert with a real client on both
  servers.
* uvloop (and asyncio) read decrypted data with ``SSLObject.read(256 KiB)``; CPython allocates the whole size
  for every read and then shrinks it, about 40 µs per record against 5 µs for 16 KiB (a record never holds
  more than 16 KiB, and the callers read until nothing is pending). :class:`ServerSSLObject` asks for 16 KiB:
  with it, keep-alive HTTPS costs the proxy about what plain HTTP does (``make bench-proxy``: 4 276 req/s over
  TLS against 4 095 plain in the same rounds; 2 695 against 4 392 before).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from graylane.proxy.sources.pemload import load_chain

from graylane.tls.certificate import Certificate

INTERMEDIATE_TLS12 = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
))  # fmt: skip
ALPN = ["http/1.1"]
MAX_RECORD = 16 * 1024  # the most plaintext one TLS record carries
Lookup = Callable[[str | None], ssl.SSLContext | None]


def server_context(cert: Certificate | None = None) -> ssl.SSLContext:
    """A context with the profile above, serving ``cert`` (None: the listener's, certificate-less)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers(INTERMEDIATE_TLS12)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_alpn_protocols(ALPN)
    if cert is not None:
        load_chain(ctx, cert.chain_pem, cert.key_pem)
    return ctx


class ServerSSLObject(ssl.SSLObject):
    """The listener's ``SSLObject``: a refused handshake still sends its alert, and reads are record-sized
    (both in the module docstring)."""

    refused = False  # set by the SNI callback; then the next handshake failure is reported as WANT_READ

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # SSLObject.read, with its names
        native: Any = self._sslobj  # type: ignore[attr-defined]  # the C object SSLObject wraps
        if buffer is not None:
            return native.read(len, buffer)
        return native.read(len if len < MAX_RECORD else MAX_RECORD)

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except ssl.SSLError:
            if not self.refused:
                raise
            self.refused = False  # once: when the client answers or closes, the error surfaces
            raise ssl.SSLWantReadError("the alert goes out first") from None


def listener_context(lookup: Lookup) -> ssl.SSLContext:
    """The listener's context: picks the per-name context on every handshake by calling ``lookup``."""
    base = server_context()
    base.sslobject_class = ServerSSLObject

    def choose(sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        chosen = lookup(server_name)
        if chosen is None:
            if isinstance(sslobj, ServerSSLObject):
                sslobj.refused = True
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = chosen
        return None

    base.sni_callback = choose
    return base
