"""The names of the objects the Gateway controller keeps in the install namespace (pure)."""

from __future__ import annotations

from graylane.compile import names
from graylane.gateway.objects import ObjectRef


def object_name(namespace: str, name: str) -> str:
    """``graylane-gw-<namespace>-<name>``: a DNS label (Services need one), hash-shortened to 63."""
    text = f"graylane-gw-{namespace}-{name}".replace(".", "-")
    return names.label_value(text) if len(text) > 63 else text


def route_configmap_name(gateway: str, route_namespace: str, route_name: str) -> str:
    """``<gateway object name>-r-<route namespace>-<route name>``, hash-shortened to 253."""
    return names.fit(f"{gateway}-r-{route_namespace}-{route_name}", names.MAX_NAME, gateway, route_namespace,
                     route_name)  # fmt: skip


def mirror_name(gateway: str, ref: ObjectRef) -> str:
    """The copy of the certificate Secret ``ref`` for the Gateway whose objects are named ``gateway``:
    ``<gateway>-tls-<namespace>.<name>`` (a namespace has no dot: unique), hash-shortened to 253."""
    return names.fit(f"{gateway}-tls-{ref.namespace}.{ref.name}", names.MAX_NAME, gateway, ref.namespace,
                     ref.name)  # fmt: skip
