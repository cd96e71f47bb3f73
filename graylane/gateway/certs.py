"""Whether a Secret can serve TLS: a ``kubernetes.io/tls`` pair whose PEM certificate and key parse."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def tls_problem(secret: Mapping[str, Any]) -> str | None:
    """None when ``secret`` (the API object) holds a usable certificate and key; otherwise why not."""
    data = secret.get("data")
    if not isinstance(data, Mapping):
        data = {}
    try:
        crt = base64.b64decode(str(data.get("tls.crt", "")), validate=True)
        key = base64.b64decode(str(data.get("tls.key", "")), validate=True)
    except (binascii.Error, ValueError):
        return "tls.crt/tls.key are not base64"
    if not crt or not key:
        return "needs tls.crt and tls.key"
    try:
        x509.load_pem_x509_certificates(crt)
    except ValueError:
        return "tls.crt is not a PEM certificate"
    try:
        load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        return "tls.key is not an unencrypted PEM private key"
    return None
