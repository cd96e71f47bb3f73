"""The certificates of HTTPS listeners: which Secrets can serve, and the names of their copies.

A listener's ``tls.certificateRefs`` may name a Secret in any namespace (through a ReferenceGrant); the
Gateway's proxies read Secrets only in the install namespace, so the operator copies each usable one there
(:func:`graylane.gateway.naming.mirror_name`, labelled with the Gateway's UID) and the route documents name
the copy. Whether a Secret can serve is :func:`graylane.tls.secret.read_secret` -- the same checks the proxy
makes before it serves one (type, base64, PEM chain and key, key type, key match, validity at ``now``); a
listener's certificate need not name its hostname (the spec leaves that to the client).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.gateway.objects import Key
from graylane.tls.secret import read_secret


@dataclass(frozen=True, slots=True)
class TlsSecret:
    """What the operator keeps of a ``kubernetes.io/tls`` Secret: its problem, or the data to copy."""

    problem: str | None
    data: Mapping[str, str] = field(default_factory=dict, repr=False)  # tls.crt, tls.key (base64)


def tls_secret(secret: Mapping[str, Any], *, now: datetime.datetime) -> TlsSecret:
    """``secret`` (the API object) judged at ``now``; never raises, never keeps the data of a bad one."""
    checked = read_secret(secret, now=now)
    if checked.problem is not None:
        return TlsSecret(checked.problem)
    return TlsSecret(None, dict(checked.data))


def problems(secrets: Mapping[Key, TlsSecret]) -> dict[Key, str | None]:
    """The :class:`graylane.gateway.plan.World` view: each known Secret's problem (None: usable)."""
    return {key: found.problem for key, found in secrets.items()}
