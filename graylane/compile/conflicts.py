"""Host/path claims of routes and the conflict rule: the older route keeps a contested (host, pathPrefix).

Two routes conflict when they claim the same lower-cased host (or both claim any host, ``hosts: []``) with
the same ``pathPrefix``. The route created first (then the smaller ``namespace/name``) keeps it; the younger
one is
``Ready=False/Conflict`` until the older one goes away or either changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANY_HOST = "*"


@dataclass(frozen=True, slots=True)
class RouteClaim:
    namespace: str
    name: str
    uid: str
    created: str  # RFC 3339 creationTimestamp; sorts chronologically as text
    claims: frozenset[tuple[str, str]]

    @property
    def seniority(self) -> tuple[str, str, str]:
        return (self.created, self.namespace, self.name)


def route_claim(route: Mapping[str, Any]) -> RouteClaim:
    """The claims of a CanaryRoute object (a plain dict as the API returns it)."""
    meta = route.get("metadata") or {}
    spec = route.get("spec") or {}
    hosts = [h.lower().rstrip(".") for h in spec.get("hosts") or [] if isinstance(h, str)] or [ANY_HOST]
    prefix = spec.get("pathPrefix") or "/"
    return RouteClaim(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        created=str(meta.get("creationTimestamp") or ""),
        claims=frozenset((h, str(prefix)) for h in hosts),
    )


def find_conflict(route: RouteClaim, others: Iterable[RouteClaim]) -> tuple[RouteClaim, str, str] | None:
    """The oldest route senior to ``route`` that claims one of its (host, prefix) pairs, with the pair."""
    best: tuple[RouteClaim, str, str] | None = None
    for other in others:
        if other.uid == route.uid or other.seniority >= route.seniority:
            continue
        shared = route.claims & other.claims
        if shared and (best is None or other.seniority < best[0].seniority):
            host, prefix = min(shared)
            best = (other, host, prefix)
    return best
