"""The route ConfigMaps in the install namespace: what exists (a cache), and the one writer.

The writer creates or patches a route's ConfigMap only when the document's checksum changed, and it only
touches ConfigMaps it created (labelled ``graylane.io/route-config=true`` and managed by the operator).
The cache is filled from a paginated LIST at startup and refreshed by every orphan sweep.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graylane.operator.informer import list_pages
from graylane.operator.kubeapi import Conflict, KubeAPI, NotFound, configmaps_path

from graylane.compile import names
from graylane.config.document import canonical_json

CHECKSUM_ANNOTATION = "graylane.io/checksum"
WEIGHT_ANNOTATION = "graylane.io/weight"
SELECTOR = f"{names.ROUTE_CONFIG_LABEL}=true,{names.MANAGED_BY_LABEL}={names.MANAGED_BY}"


class NameTaken(Exception):
    """Neither candidate name for a route's ConfigMap is free (taken by objects that are not its own)."""


@dataclass(frozen=True, slots=True)
class Written:
    """One route ConfigMap as last seen or written."""

    name: str
    object_uid: str
    resource_version: str
    route_namespace: str
    route_name: str
    route_uid: str
    checksum: str
    weight: float | None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Written:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        route = str(annotations.get(names.ROUTE_ANNOTATION, "/")).split("/", 1)
        weight = annotations.get(WEIGHT_ANNOTATION)
        return cls(
            name=meta.get("name", ""),
            object_uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            route_namespace=labels.get(names.ROUTE_NAMESPACE_LABEL, route[0]),
            route_name=route[1] if len(route) > 1 else "",
            route_uid=labels.get(names.ROUTE_UID_LABEL, ""),
            checksum=annotations.get(CHECKSUM_ANNOTATION, ""),
            weight=float(weight) if weight not in (None, "") else None,
        )


def is_ours(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(names.ROUTE_CONFIG_LABEL) == "true"
        and labels.get(names.MANAGED_BY_LABEL) == names.MANAGED_BY
    )


class ConfigMapStore:
    """The operator's view of its own ConfigMaps in one namespace, by name and by route UID.

    Read ``by_name``; change it only through :meth:`put`, :meth:`discard` and :meth:`replace_all`, which
    keep the UID index (``for_route``, asked by every reconcile) in step.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.by_name: dict[str, Written] = {}
        self._by_uid: dict[str, list[str]] = {}
        self._touched: set[str] | None = None  # names written while a refresh lists

    def replace_all(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.by_name, self._by_uid = {}, {}
        for written in (Written.from_object(o) for o in objects if is_ours(o)):
            self.put(written)

    def put(self, written: Written) -> None:
        self.discard(written.name)
        if self._touched is not None:
            self._touched.add(written.name)
        self.by_name[written.name] = written
        self._by_uid.setdefault(written.route_uid, []).append(written.name)

    def discard(self, name: str) -> None:
        old = self.by_name.pop(name, None)
        if self._touched is not None:
            self._touched.add(name)
        if old is None:
            return
        names = self._by_uid.get(old.route_uid, [])
        if name in names:
            names.remove(name)
        if not names:
            self._by_uid.pop(old.route_uid, None)

    def for_route(self, route_uid: str) -> list[Written]:
        return [self.by_name[name] for name in self._by_uid.get(route_uid, ())]

    async def refresh(self, api: KubeAPI) -> None:
        """List the ConfigMaps again, page by page (only what ``Written`` keeps of each stays in memory).
        What the operator wrote or deleted meanwhile is kept as it knows it (a page may predate it)."""
        fresh = ConfigMapStore(self.namespace)
        self._touched = set()
        try:
            async for page in list_pages(api, configmaps_path(self.namespace) + f"?labelSelector={SELECTOR}"):
                for obj in page.get("items") or []:
                    if is_ours(obj):
                        fresh.put(Written.from_object(obj))
            for name in self._touched:
                known = self.by_name.get(name)
                if known is not None:
                    fresh.put(known)
                else:
                    fresh.discard(name)
        finally:
            self._touched = None
        self.by_name, self._by_uid = fresh.by_name, fresh._by_uid


@dataclass(frozen=True, slots=True)
class Applied:
    name: str
    changed: bool
    previous_weight: float | None


def configmap_body(
    namespace: str, name: str, route: tuple[str, str, str], document: Mapping[str, Any]
) -> Any:
    route_ns, route_name, uid = route
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": names.route_labels(route_ns, route_name, uid),
            "annotations": {
                names.ROUTE_ANNOTATION: f"{route_ns}/{route_name}",
                CHECKSUM_ANNOTATION: document["checksum"],
                WEIGHT_ANNOTATION: json.dumps(document["weight"]),
            },
        },
        "data": {names.DATA_KEY: canonical_json(document)},
    }


def choose_name(store: ConfigMapStore, route: tuple[str, str, str]) -> str:
    route_ns, route_name, uid = route
    own = store.for_route(uid)
    if own:
        return own[0].name
    for name in (
        names.route_configmap_name(route_ns, route_name),
        names.hashed_configmap_name(route_ns, route_name),
    ):
        if _free_for(store.by_name.get(name), route):
            return name
    raise NameTaken(f"ConfigMaps for {route_ns}/{route_name} are taken by other routes")


async def apply_configmap(
    api: KubeAPI, store: ConfigMapStore, *, route: tuple[str, str, str], document: Mapping[str, Any]
) -> Applied:
    """Make the route's ConfigMap hold ``document``; write nothing when its checksum is already there."""
    name = choose_name(store, route)
    current = store.by_name.get(name)
    previous_weight = current.weight if current else None
    if current is not None and current.checksum == document["checksum"]:
        return Applied(name=name, changed=False, previous_weight=previous_weight)
    body = configmap_body(store.namespace, name, route, document)
    if current is not None:
        try:
            result = await api.merge_patch(configmaps_path(store.namespace, name), patch=body)
        except NotFound:
            result = await _create(api, store, name, route, body)
    else:
        result = await _create(api, store, name, route, body)
    store.put(Written.from_object(result))
    return Applied(name=name, changed=True, previous_weight=previous_weight)


async def _create(
    api: KubeAPI, store: ConfigMapStore, name: str, route: tuple[str, str, str], body: Any
) -> Any:
    try:
        return await api.create(configmaps_path(store.namespace), body=body)
    except Conflict:
        existing = await api.get(configmaps_path(store.namespace, name))
        found = Written.from_object(existing)
        if not is_ours(existing) or not _free_for(found, route):
            store.put(found if is_ours(existing) else _foreign(name))
            raise NameTaken(f"ConfigMap {store.namespace}/{name} exists and is not this route's") from None
        return await api.merge_patch(configmaps_path(store.namespace, name), patch=body)


def _free_for(written: Written | None, route: tuple[str, str, str]) -> bool:
    """Free, this route's, or left by a deleted route of the same namespace/name (a re-created route)."""
    if written is None or written.route_uid in (route[2], ""):
        return written is None or bool(written.object_uid)  # a foreign object (no uid) is never free
    return (written.route_namespace, written.route_name) == route[:2]


def _foreign(name: str) -> Written:
    return Written(name, "", "", "", "", "", "", None)


async def delete_route_configmaps(api: KubeAPI, store: ConfigMapStore, *, route_uid: str) -> list[str]:
    """Delete every ConfigMap of the route (by its UID label); returns their names."""
    deleted = []
    for written in store.for_route(route_uid):
        # Conflict: re-created meanwhile under the same name by someone else, not ours to delete.
        with contextlib.suppress(Conflict):
            await api.delete(configmaps_path(store.namespace, written.name), uid=written.object_uid)
        store.discard(written.name)
        deleted.append(written.name)
    return deleted
