"""Which Upstreams of a namespace a route's compile needs: its stable, its canary and the ones its
``versionRouting.upstreamSelector`` selects -- found by name and by label, not by scanning the namespace.

:func:`graylane.compile.route.compile_route` takes the Upstreams of the route's namespace; passing only
:func:`relevant_upstreams` gives the same document (the others cannot appear in it), and costs the same at
20 or 20,000 Upstreams in the namespace. ``graylane render`` uses :class:`UpstreamIndex`; the operator
answers the same questions from its Kopf indices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from graylane.compile.selectors import selector_matches

Obj = Mapping[str, Any]


class UpstreamLookup(Protocol):
    """The Upstreams of one namespace."""

    def get(self, name: str) -> Obj | None: ...

    def labelled(self, key: str, value: str) -> Iterable[str]:
        """Names of the Upstreams whose ``metadata.labels[key] == value``."""
        ...

    def names(self) -> Iterable[str]: ...


def relevant_upstreams(spec: Mapping[str, Any], upstreams: UpstreamLookup) -> dict[str, Obj]:
    """The Upstreams ``spec`` names or selects, by name (missing names are simply absent)."""
    out: dict[str, Obj] = {}
    for role in ("stable", "canary"):
        name = spec.get(role)
        found = upstreams.get(name) if isinstance(name, str) else None
        if found is not None:
            out[str(name)] = found
    routing = spec.get("versionRouting")
    selector = routing.get("upstreamSelector") if isinstance(routing, Mapping) else None
    for name in _selected(selector, upstreams):
        found = upstreams.get(name)
        if found is not None:
            out[name] = found
    return out


def _selected(selector: Any, upstreams: UpstreamLookup) -> Iterable[str]:
    if not isinstance(selector, Mapping) or not selector:
        return ()
    labels = selector.get("matchLabels") or {}
    if isinstance(labels, Mapping) and labels and all(isinstance(v, str) for v in labels.values()):
        pools = [set(upstreams.labelled(str(k), v)) for k, v in labels.items()]
        names: Iterable[str] = set.intersection(*pools)
    else:
        names = upstreams.names()
    return [n for n in names if selector_matches(selector, _labels(upstreams.get(n)))]


def _labels(obj: Obj | None) -> Any:
    meta = obj.get("metadata") if obj is not None else None
    return meta.get("labels") if isinstance(meta, Mapping) else None


class UpstreamIndex:
    """Upstream objects of one namespace by name and by label (:class:`UpstreamLookup`)."""

    def __init__(self, objects: Mapping[str, Obj] | None = None) -> None:
        self._by_name: dict[str, Obj] = {}
        self._by_label: dict[tuple[str, str], set[str]] = {}
        for name, obj in (objects or {}).items():
            self.put(name, obj)

    def put(self, name: str, obj: Obj) -> None:
        self.remove(name)
        self._by_name[name] = obj
        for pair in _pairs(obj):
            self._by_label.setdefault(pair, set()).add(name)

    def remove(self, name: str) -> None:
        old = self._by_name.pop(name, None)
        for pair in _pairs(old) if old is not None else ():
            self._by_label[pair].discard(name)

    def get(self, name: str) -> Obj | None:
        return self._by_name.get(name)

    def labelled(self, key: str, value: str) -> Iterable[str]:
        return self._by_label.get((key, value), ())

    def names(self) -> Iterable[str]:
        return self._by_name.keys()


def _pairs(obj: Obj) -> list[tuple[str, str]]:
    labels = _labels(obj)
    if not isinstance(labels, Mapping):
        return []
    return [(str(k), v) for k, v in labels.items() if isinstance(v, str)]
