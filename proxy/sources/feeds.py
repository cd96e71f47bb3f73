"""A feed of named Kubernetes objects for ``kube.py``'s list + watch: which names each namespace holds.

Its ``sink`` says what an object means (``put``), what its disappearance means (``drop``) and what to do once
a list or an event has been taken in (``flush``); the feed keeps the names seen per namespace, so that a
re-list (after a ``410 Gone``) drops the objects deleted while nobody watched.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    def put(self, ns: str, name: str, obj: dict[str, Any]) -> None: ...

    def drop(self, ns: str, name: str) -> None: ...

    def flush(self) -> None: ...


class NamedFeed:
    def __init__(self, resource: str, selector: dict[str, str], sink: Sink) -> None:
        self.resource = resource  # "configmaps", "secrets"
        self.selector = selector  # labelSelector / fieldSelector of the list and the watch
        self.sink = sink
        self._known: dict[str, set[str]] = {}

    def listed(self, ns: str, items: list[dict[str, Any]]) -> None:
        """A whole list at once (one page)."""
        self.listed_all(ns, self.page(ns, items))

    def page(self, ns: str, items: list[dict[str, Any]]) -> set[str]:
        """One page of a list: every object is put (and flushed); the names it held."""
        names = set()
        for item in items:
            name = str(item["metadata"]["name"])
            names.add(name)
            self.sink.put(ns, name, item)
        self.sink.flush()
        return names

    def listed_all(self, ns: str, names: set[str]) -> None:
        """The list is complete (``names`` from every page): what it no longer holds is dropped."""
        for gone in self._known.get(ns, set()) - names:
            self.sink.drop(ns, gone)
        self._known[ns] = names
        self.sink.flush()

    def changed(self, ns: str, kind: str, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return
        known = self._known.setdefault(ns, set())
        if kind == "DELETED":
            known.discard(name)
            self.sink.drop(ns, name)
        else:
            known.add(name)
            self.sink.put(ns, name, obj)
        self.sink.flush()
