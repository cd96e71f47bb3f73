"""One resource kept in memory by list + watch: a :class:`Store` each, which :func:`follow` keeps current.

Lists come in pages of ``PAGE`` objects (10,000 routes are never one 30 MB answer). A watch that ends is
resumed from the last resourceVersion (bookmarks included); ``410 Gone`` lists again; API trouble (a CRD not
installed yet, the API away) retries with jittered backoff (0.5 s .. 30 s) and the last known objects stay.
Each change calls ``on_change`` (the Gateway controller's "something moved"); a store's ``on_event`` hears
each object's change itself, ``(key, old, new)`` with ``new`` None when it went away (the route controller's
way to know exactly which keys moved). Used by both controllers: Gateway API and CanaryRoutes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from graylane.operator.kubeapi import APIError, KubeAPI

log = logging.getLogger("graylane.operator.informer")
Key = tuple[str, str]
WATCH_SECONDS = 240
PAGE = 500
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0


class Gone(Exception):
    """The resourceVersion expired: list again."""


def keep_all(obj: dict[str, Any]) -> Any:
    return obj


@dataclass
class Store:
    """The objects of one resource URL (cluster-wide or one namespace), by (namespace, name)."""

    url: str
    labels: str = ""
    fields: str = ""
    keep: Callable[[dict[str, Any]], Any] = keep_all  # what is kept of each object (memory)
    objects: dict[Key, Any] = field(default_factory=dict)
    synced: bool = False
    on_event: Callable[[Key, Any, Any], None] | None = None
    """Called with ``(key, old, new)`` after each object's change (``new`` None: deleted)."""

    def query(self, **extra: str) -> str:
        params = {"labelSelector": self.labels, "fieldSelector": self.fields, **extra}
        return self.url + "?" + urlencode({k: v for k, v in params.items() if v})

    def put(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        old, new = self.objects.get(key), self.keep(obj)
        self.objects[key] = new
        if self.on_event is not None:
            self.on_event(key, old, new)

    def remove(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        old = self.objects.pop(key, None)
        if self.on_event is not None and old is not None:
            self.on_event(key, old, None)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name")))


async def list_pages(api: KubeAPI, url: str) -> AsyncIterator[dict[str, Any]]:
    """Each page of a list (``PAGE`` items at most; ``url`` may already have a query); the last page's
    metadata has the list's resourceVersion. An expired continue token raises :class:`Gone`."""
    token = ""
    sep = "&" if "?" in url else "?"
    while True:
        query = urlencode({"limit": str(PAGE), **({"continue": token} if token else {})})
        try:
            page = await api.get(f"{url}{sep}{query}")
        except APIError as exc:
            if exc.status == 410:
                raise Gone() from exc
            raise
        yield page
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return


async def follow(api: KubeAPI, store: Store, on_change: Callable[[], None]) -> None:
    """Keep ``store`` current until cancelled."""
    delay = BACKOFF_MIN
    while True:
        try:
            version = await _list(api, store)
            on_change()
            delay = BACKOFF_MIN
            while True:
                version = await _watch(api, store, version, on_change)
        except Gone:
            continue
        except (APIError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            pause = random.uniform(delay / 2, delay)
            log.warning("watching %s: %s; retrying in %.1fs", store.url, exc or type(exc).__name__, pause)
            await asyncio.sleep(pause)
            delay = min(delay * 2, BACKOFF_MAX)


async def _list(api: KubeAPI, store: Store) -> str:
    """List page by page into the store; what is gone since the last list is removed (and told)."""
    seen: set[Key] = set()
    version = ""
    async for page in list_pages(api, store.query()):
        for item in page.get("items") or []:
            seen.add(key_of(item))
            store.put(item)
        version = str((page.get("metadata") or {}).get("resourceVersion") or "")
    for key in [k for k in store.objects if k not in seen]:
        store.remove({"metadata": {"namespace": key[0], "name": key[1]}})
    store.synced = True
    return version


async def _watch(api: KubeAPI, store: Store, version: str, on_change: Callable[[], None]) -> str:
    url = store.query(watch="1", resourceVersion=version, allowWatchBookmarks="true",
                      timeoutSeconds=str(WATCH_SECONDS))  # fmt: skip
    async for event in api.watch(url, timeout_seconds=WATCH_SECONDS):
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ValueError(f"watch error: {obj.get('message')}")
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "DELETED":
            store.remove(obj)
        elif kind in ("ADDED", "MODIFIED"):
            store.put(obj)
        else:
            continue  # BOOKMARK
        on_change()
    return version
