"""Names of what the import writes: Upstreams after their Service, routes after their main Ingress, and the
``metadata.version`` of each Upstream."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from graylane.compile.names import MAX_NAME, shorten

VERSION_TAIL = re.compile(r"v[0-9][a-z0-9.]*|[0-9]+(\.[0-9]+)+")
NOT_NAME = re.compile(r"[^a-z0-9]+")


def service_version(namespace: str, service: str, overrides: Mapping[str, str]) -> str:
    """``--version`` (``ns/svc=`` before ``svc=``), else the Service name's last ``-`` part when it looks
    like a version (``checkout-v2`` -> ``v2``, ``api-1.4.0`` -> ``1.4.0``), else the whole Service name."""
    for key in (f"{namespace}/{service}", service):
        if key in overrides:
            return overrides[key]
    tail = service.rsplit("-", 1)[-1]
    return tail if "-" in service and VERSION_TAIL.fullmatch(tail) else service


def upstream_names(backends: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str, int], str]:
    """``(namespace, service, port)`` -> Upstream name: the Service name, or ``<service>-<port>`` when one
    Service is reached on more than one port in the namespace."""
    ports: dict[tuple[str, str], set[int]] = {}
    for namespace, service, port in backends:
        ports.setdefault((namespace, service), set()).add(port)
    return {
        (ns, svc, port): svc if len(found) == 1 else f"{svc}-{port}"
        for (ns, svc), found in ports.items()
        for port in found
    }


def path_slug(path: str) -> str:
    """``/`` -> ``root``, ``/api/v1/`` -> ``api-v1``."""
    return NOT_NAME.sub("-", path.lower()).strip("-") or "root"


def route_names(keys: Sequence[tuple[str, str, str]]) -> list[str]:
    """One CanaryRoute name per ``(namespace, main Ingress, path slug)``, in order: the main Ingress's name
    when it gives one route, else ``<name>-<slug>``, numbered from the second repeat on (``-2``, ``-3``)."""
    routes_per_main = Counter((namespace, main) for namespace, main, _ in keys)
    seen: Counter[tuple[str, str]] = Counter()
    out: list[str] = []
    for namespace, main, slug in keys:
        name = main if routes_per_main[(namespace, main)] == 1 else f"{main}-{slug}"
        seen[(namespace, name)] += 1
        if seen[(namespace, name)] > 1:
            name = f"{name}-{seen[(namespace, name)]}"
        out.append(shorten(name, MAX_NAME, namespace, name))
    return out
