"""A ``kubernetes.io/tls`` Secret object as the API returns it, checked for the hosts a route serves (pure).

The operator calls :func:`check_secret` before it mirrors a route's certificate: the type, both keys in
base64, the certificate checks of :mod:`graylane.tls.certificate` and RFC 6125 coverage of every host; and
:func:`read_secret` (all but the coverage) before it mirrors a Gateway listener's certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graylane.tls.certificate import (
    CONDITIONS,
    CRT,
    HOST_MISMATCH,
    KEY,
    CertificateError,
    parse_certificate,
)
from graylane.tls.hostnames import uncovered

TLS_TYPE = "kubernetes.io/tls"


@dataclass(frozen=True, slots=True)
class SecretCheck:
    """``problem`` None: ``data`` ({tls.crt, tls.key} in base64, as read) may be served."""

    reason: str = ""  # the Ready condition's reason when there is a problem
    problem: str | None = None  # the message, with field paths; never key material
    data: dict[str, str] = field(default_factory=dict, repr=False)
    dns_names: tuple[str, ...] = ()  # the certificate's DNS-IDs


def read_secret(secret: Mapping[str, Any], *, now: datetime.datetime) -> SecretCheck:
    """The type, both keys in base64 and the certificate checks of :mod:`graylane.tls.certificate` at
    ``now``; messages are relative to the Secret (a Gateway listener's ``certificateRefs`` name it)."""
    invalid = CONDITIONS["malformed"]
    if secret.get("type") != TLS_TYPE:
        return SecretCheck(invalid, f"type {secret.get('type')!r} is not {TLS_TYPE}")
    data = secret.get("data") or {}
    raw: dict[str, bytes] = {}
    for key in (CRT, KEY):
        value = data.get(key)
        try:
            raw[key] = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except (binascii.Error, ValueError):
            return SecretCheck(invalid, f"data.{key} is not base64")
    try:
        cert = parse_certificate(raw[CRT], raw[KEY], now=now)
    except CertificateError as exc:
        return SecretCheck(CONDITIONS[exc.reason], "; ".join(str(e) for e in exc.errors[:3]))
    return SecretCheck(data={CRT: data[CRT], KEY: data[KEY]}, dns_names=cert.dns_names)


def check_secret(
    secret: Mapping[str, Any], *, hosts: Sequence[str], now: datetime.datetime, name: str
) -> SecretCheck:
    """Check ``secret`` (named ``name``, "namespace/name", in messages) for serving ``hosts`` at ``now``."""
    read = read_secret(secret, now=now)
    if read.problem is not None:
        message = f"spec.tls.secretName: Secret {name}: {read.problem} (the proxies keep what they serve)"
        return SecretCheck(read.reason, message)
    missing = uncovered(read.dns_names, hosts)
    if missing:
        names = ", ".join(read.dns_names) or "no DNS names"
        message = f"spec.hosts: {missing[0]!r} is not covered by the certificate of Secret {name} ({names})"
        return SecretCheck(CONDITIONS[HOST_MISMATCH], message)
    return read
