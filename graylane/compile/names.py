"""Names and labels of the objects the operator writes for a route (pure; shared by operator and proxy).

Kubernetes limits object names to 253 characters (DNS subdomain) and label values to 63; a route's namespace
and name together can exceed both, so long names are shortened and suffixed with a hash of the full identity.
"""

from __future__ import annotations

import hashlib

ROUTE_CONFIG_LABEL = "graylane.io/route-config"
ROUTE_NAMESPACE_LABEL = "graylane.io/route-namespace"
ROUTE_NAME_LABEL = "graylane.io/route-name"
ROUTE_UID_LABEL = "graylane.io/route-uid"
JWT_SECRET_LABEL = "graylane.io/jwt-secret"  # on mirrored HS* key Secrets
TLS_SECRET_LABEL = "graylane.io/tls-secret"  # on mirrored kubernetes.io/tls Secrets
MIRROR_LABELS = {"jwt": JWT_SECRET_LABEL, "tls": TLS_SECRET_LABEL}  # mirrored Secret kind -> its label
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "graylane-operator"
ROUTE_ANNOTATION = "graylane.io/route"  # "namespace/name", never shortened
DATA_KEY = "route.json"

MAX_NAME = 253
MAX_LABEL_VALUE = 63
HASH_LENGTH = 10


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode("utf-8")).hexdigest()[:HASH_LENGTH]


def shorten(text: str, limit: int, *identity: str) -> str:
    """``text`` if it fits ``limit``, else cut and suffixed with a hash of ``identity``."""
    if len(text) <= limit:
        return text
    keep = text[: limit - HASH_LENGTH - 1].rstrip("-.")
    return f"{keep}-{_digest(*identity)}"


def fit(text: str, limit: int, *identity: str) -> str:
    """``text`` if it has at most ``limit`` characters, otherwise shortened with a hash of ``identity``."""
    return shorten(text, limit, *identity)


def route_configmap_name(namespace: str, name: str) -> str:
    """``graylane-route-<namespace>-<name>``, hash-shortened to fit 253 characters."""
    return shorten(f"graylane-route-{namespace}-{name}", MAX_NAME, namespace, name)


def hashed_configmap_name(namespace: str, name: str) -> str:
    """The fallback when the plain name is taken by another route (``a-b``/``c`` vs ``a``/``b-c``)."""
    base = f"graylane-route-{namespace}-{name}"[: MAX_NAME - HASH_LENGTH - 1].rstrip("-.")
    return f"{base}-{_digest(namespace, name)}"


def mirrored_secret_name(namespace: str, name: str, kind: str = "jwt") -> str:
    """The operator-owned Secret in the install namespace holding a route's HS* JWT key (``kind`` "jwt") or
    its TLS certificate and key ("tls"): ``graylane-<kind>-<namespace>-<name>``, hash-shortened."""
    return shorten(f"graylane-{kind}-{namespace}-{name}", MAX_NAME, namespace, name)


def label_value(text: str) -> str:
    """``text`` if it fits a label value, otherwise shortened with a hash suffix."""
    return shorten(text, MAX_LABEL_VALUE, text)


def route_labels(namespace: str, name: str, uid: str) -> dict[str, str]:
    return {
        ROUTE_CONFIG_LABEL: "true",
        ROUTE_NAMESPACE_LABEL: namespace,
        ROUTE_NAME_LABEL: label_value(name),
        ROUTE_UID_LABEL: uid,
        MANAGED_BY_LABEL: MANAGED_BY,
    }
