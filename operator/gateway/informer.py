"""One resource kept in memory by list + watch: a :class:`Store` each, which :func:`follow` keeps current.

A watch that ends is resumed from the last resourceVersion (bookmarks included); ``410 Gone`` lists again;
API trouble (a CRD not installed yet, the API away) retries with jittered backoff (0.5 s .. 30 s) and the
last known objects stay. Each change calls ``on_change`` (the controller's "something moved").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from graylane.operator.kubeapi import APIError, KubeAPI

log = logging.getLogger("graylane.gateway")
Key = tuple[str, str]
WATCH_SECONDS = 240
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

    def query(self, **extra: str) -> str:
        params = {"labelSelector": self.labels, "fieldSelector": self.fields, **extra}
        return self.url + "?" + urlencode({k: v for k, v in params.items() if v})

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self.objects[(str(meta.get("namespace") or ""), str(meta.get("name")))] = self.keep(obj)

    def remove(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self.objects.pop((str(meta.get("namespace") or ""), str(meta.get("name"))), None)


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
    listing = await api.get(store.query())
    store.objects = {}
    for item in listing.get("items") or []:
        store.put(item)
    store.synced = True
    return str((listing.get("metadata") or {}).get("resourceVersion") or "")


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
