"""Ingress manifests for the ``graylane import ingress-nginx`` tests (unit, proxy and cluster tiers)."""

from __future__ import annotations

from typing import Any

import yaml

PREFIX = "nginx.ingress.kubernetes.io"
HOST = "shop.example.com"


def ingress(
    name: str,
    service: str,
    *,
    annotations: dict[str, str] | None = None,
    host: str | None = HOST,
    path: str = "/",
    path_type: str = "Prefix",
    port: int | str = 8080,
    namespace: str | None = "shop",
    paths: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A networking.k8s.io/v1 Ingress; ``annotations`` keys without a ``/`` get the ingress-nginx prefix."""
    port_ref = {"number": port} if isinstance(port, int) else {"name": port}
    one = {"path": path, "pathType": path_type, "backend": {"service": {"name": service, "port": port_ref}}}
    rule: dict[str, Any] = {} if host is None else {"host": host}
    rule["http"] = {"paths": paths if paths is not None else [one]}
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = {(k if "/" in k else f"{PREFIX}/{k}"): v for k, v in annotations.items()}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {"ingressClassName": "nginx", "rules": [rule], **spec},
    }


def canary(name: str, service: str, annotations: dict[str, str], **kw: Any) -> dict[str, Any]:
    """A canary Ingress (``canary: "true"`` added)."""
    return ingress(name, service, annotations={"canary": "true", **annotations}, **kw)


def pair(annotations: dict[str, str], **kw: Any) -> list[dict[str, Any]]:
    """The usual two: main Ingress ``checkout`` -> Service checkout-v1, canary -> checkout-v2."""
    return [
        ingress("checkout", "checkout-v1", **kw),
        canary("checkout-canary", "checkout-v2", annotations, **kw),
    ]


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)
