"""Who depends on what, in memory: the routes naming or selecting each Upstream, naming each TLS Secret,
claiming each (host, pathPrefix); the Upstreams of each namespace by name and by label.

It answers the controller's two questions without a scan: "this object changed: which routes must be
compiled again?" and "this route: which Upstreams and rivals does its compile read?". Pure: it is fed the
old and the new object of each change (the informer's ``on_event``) and keeps only keys and label pairs;
the objects themselves stay in the informer's stores.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from graylane.compile import conflicts
from graylane.compile.upstreams import UpstreamIndex, relevant_upstreams

Key = tuple[str, str]
Obj = Mapping[str, Any]
KEEP_META = ("name", "namespace", "uid", "generation", "creationTimestamp", "labels", "resourceVersion")
API_VERSION = "graylane.io/v1alpha1"
SHORT = 64  # strings up to this length are interned


def compact(obj: Obj, kind: str) -> dict[str, Any]:
    """The parts of a CanaryRoute or Upstream the operator reads: a detached copy whose keys and short
    strings are interned (every object's own copies of "metadata", "canary", the namespace, ... were a third
    of the memory at 10,000 routes)."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {k: _shared(meta[k]) for k in KEEP_META if k in meta},
        "spec": _shared(dict(obj.get("spec") or {})),
        "status": _shared(dict(obj.get("status") or {})),
    }


def _shared(value: Any) -> Any:
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= SHORT else value
    if isinstance(value, dict):
        return {sys.intern(str(k)): _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value]
    return value


def same(old: Obj, new: Obj) -> bool:
    """Equal but for the resourceVersion (an echo, an annotation or a finalizer changed)."""
    if old.get("spec") != new.get("spec") or old.get("status") != new.get("status"):
        return False
    before, after = dict(old.get("metadata") or {}), dict(new.get("metadata") or {})
    before.pop("resourceVersion", None)
    after.pop("resourceVersion", None)
    return before == after


def _add(table: dict[Any, set[Key]], entry: Any, key: Key) -> None:
    table.setdefault(entry, set()).add(key)


def _drop(table: dict[Any, set[Key]], entry: Any, key: Key) -> None:
    keys = table.get(entry)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del table[entry]


def _selector_entries(namespace: str, spec: Obj) -> list[tuple[str, ...]]:
    """What a route's ``versionRouting.upstreamSelector`` depends on: its matchLabels pairs, or the whole
    namespace (``(namespace,)``) when it has none that can be looked up."""
    routing = spec.get("versionRouting")
    selector = routing.get("upstreamSelector") if isinstance(routing, Mapping) else None
    if not isinstance(selector, Mapping) or not selector:
        return [(namespace,)] if isinstance(routing, Mapping) else []
    labels = selector.get("matchLabels")
    if isinstance(labels, Mapping) and labels and all(isinstance(v, str) for v in labels.values()):
        return [(namespace, str(k), v) for k, v in labels.items()]
    return [(namespace,)]


def _dependencies(key: Key, route: Obj) -> list[tuple[str, ...]]:
    """The index entries of a route: Upstream names, selector entries, its TLS Secret."""
    spec, namespace = route.get("spec") or {}, key[0]
    out: list[tuple[str, ...]] = [
        ("upstream", namespace, name)
        for name in {spec.get("stable"), spec.get("canary")}
        if isinstance(name, str)
    ]
    out += [("selector", *entry) for entry in _selector_entries(namespace, spec)]
    tls = spec.get("tls")
    secret = tls.get("secretName") if isinstance(tls, Mapping) else None
    if isinstance(secret, str):
        out.append(("secret", namespace, secret))
    return out


class RouteIndex:
    def __init__(self) -> None:
        self.depends: dict[tuple[str, ...], set[Key]] = {}
        self.claims: dict[tuple[str, str], dict[Key, conflicts.RouteClaim]] = {}
        self.upstreams: dict[str, UpstreamIndex] = {}

    def route_changed(self, key: Key, old: Obj | None, new: Obj | None) -> set[Key]:
        """Update the index; the routes to reconcile: this one, and those sharing a claim it took or left."""
        before = conflicts.route_claim(old).claims if old is not None else frozenset()
        after = conflicts.route_claim(new) if new is not None else None
        for entry in _dependencies(key, old) if old is not None else ():
            _drop(self.depends, entry, key)
        for entry in _dependencies(key, new) if new is not None else ():
            _add(self.depends, entry, key)
        for pair in before:
            holders = self.claims.get(pair, {})
            holders.pop(key, None)
            if not holders:
                self.claims.pop(pair, None)
        now: frozenset[tuple[str, str]] = frozenset()
        if after is not None:
            now = after.claims
            for pair in now:
                self.claims.setdefault(pair, {})[key] = after
        moved = before ^ now
        return {key} | {k for pair in moved for k in self.claims.get(pair, {})}

    def upstream_changed(self, key: Key, old: Obj | None, new: Obj | None) -> set[Key]:
        """Update the index; the routes to compile again (none when only the Upstream's status moved)."""
        namespace, name = key
        index = self.upstreams.setdefault(namespace, UpstreamIndex())
        if new is None:
            index.remove(name)
        else:
            index.put(name, new)
        if (
            old is not None
            and new is not None
            and _labels(old) == _labels(new)
            and old.get("spec") == new.get("spec")
        ):
            return set()
        entries = [("upstream", namespace, name), ("selector", namespace)]
        for obj in (old, new):
            entries += [
                ("selector", namespace, str(k), v) for k, v in _labels(obj).items() if isinstance(v, str)
            ]
        return {k for entry in entries for k in self.depends.get(entry, ())}

    def routes_of_secret(self, key: Key) -> set[Key]:
        return set(self.depends.get(("secret", *key), ()))

    def upstreams_for(self, route: Obj) -> dict[str, Obj]:
        """The Upstreams the route names or selects (what its compile reads), by name."""
        namespace = str((route.get("metadata") or {}).get("namespace"))
        return relevant_upstreams(route.get("spec") or {}, self.upstreams.get(namespace) or UpstreamIndex())

    def upstream(self, namespace: str, name: str) -> Obj | None:
        index = self.upstreams.get(namespace)
        return index.get(name) if index is not None else None

    def rivals(self, route: Obj) -> list[conflicts.RouteClaim]:
        """The routes claiming one of this route's (host, pathPrefix) pairs, itself included."""
        found = {
            c.uid: c
            for pair in conflicts.route_claim(route).claims
            for c in self.claims.get(pair, {}).values()
        }
        return list(found.values())


def _labels(obj: Obj | None) -> Mapping[str, Any]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, Mapping) else {}
