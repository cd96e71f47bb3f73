"""Kube mode: route documents from ConfigMaps labelled ``graylane.io/route-config=true`` (data key
``route.json``), through the API with aiohttp — list, then watch from the list's resourceVersion.

* A watch that ends is resumed from the last resourceVersion seen (bookmarks included); ``410 Gone`` (or an
  ERROR event) means re-list. Connection failures retry with jittered exponential backoff (0.5 s .. 30 s).
* The last good table keeps serving while the API is unreachable (``graylane_control_plane_connected`` 0).
* Cold start without the API: no table, ``/readyz`` not ready, the data plane answers 503 — never a default
  route. Readiness comes with the first successful list of every watched namespace.
* A deleted ConfigMap removes its route (the operator deletes it when the CanaryRoute goes away); a re-list
  that no longer contains a ConfigMap does the same. A bad document is rejected by :class:`RouteState` and
  the previous version of that route keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from typing import TYPE_CHECKING, Any

import aiohttp
from graylane.proxy.settings import Settings
from graylane.proxy.sources.kubeconfig import ApiAccess, load
from graylane.proxy.sources.secrets import KubeSecrets

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RouteState

log = logging.getLogger("graylane.proxy")

LABEL = "graylane.io/route-config=true"
DATA_KEY = "route.json"
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
WATCH_SECONDS = 240


class Gone(Exception):
    """The resourceVersion is too old: list again."""


class KubeSource:
    def __init__(self, *, access: ApiAccess | None, kubeconfig: str | None, namespaces: tuple[str, ...],
                 state: RouteState, selector: str = LABEL) -> None:  # fmt: skip
        self._access = access
        self.selector = selector
        self._kubeconfig = kubeconfig
        self.state = state
        self.namespaces = namespaces
        self._listed: set[str] = set()
        self._known: dict[str, set[str]] = {}
        self._connected: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, state: RouteState) -> KubeSource:
        return cls(access=None, kubeconfig=settings.kubeconfig, namespaces=settings.namespaces, state=state,
                   selector=settings.route_selector)  # fmt: skip

    async def run(self) -> None:
        self.state.metrics.control_plane_connected = 0
        access = await self._wait_for_access()
        namespaces = self.namespaces or (access.namespace or os.environ.get("POD_NAMESPACE") or "default",)
        self.namespaces = namespaces
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=WATCH_SECONDS + 60)
        connector = aiohttp.TCPConnector(ssl=access.ssl_context)
        secrets = KubeSecrets(self.state.verifiers.secrets, on_change=self.state.rebuild)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(
                *(self._follow(session, access, ns) for ns in namespaces),
                secrets.run(session, access, namespaces),
            )

    async def _wait_for_access(self) -> ApiAccess:
        delay = BACKOFF_MIN
        while self._access is None:
            try:
                self._access = load(self._kubeconfig)
            except Exception as exc:
                log.error("kube mode: %s (retrying in %.1fs)", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        return self._access

    async def _follow(self, session: aiohttp.ClientSession, access: ApiAccess, ns: str) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                version = await self._list(session, access, ns)
                delay = BACKOFF_MIN
                while True:
                    version = await self._watch(session, access, ns, version)
            except Gone:
                log.info("watch of %s expired (410): listing again", ns)
                continue
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                self._set_connected(ns, False)
                pause = random.uniform(delay / 2, delay)
                log.warning(
                    "kube API for namespace %s: %s; retrying in %.1fs", ns, exc or type(exc).__name__, pause
                )
                await asyncio.sleep(pause)
                delay = min(delay * 2, BACKOFF_MAX)

    def _url(self, access: ApiAccess, ns: str) -> str:
        return f"{access.server}/api/v1/namespaces/{ns}/configmaps"

    async def _list(self, session: aiohttp.ClientSession, access: ApiAccess, ns: str) -> str:
        params = {"labelSelector": self.selector}
        async with session.get(self._url(access, ns), params=params, headers=access.headers()) as resp:
            if resp.status != 200:
                raise _http_error(resp, "list")
            body = await resp.json()
        names = set()
        changes: dict[str, bytes | None] = {}
        for item in body.get("items") or []:
            name = item["metadata"]["name"]
            names.add(name)
            changes[f"{ns}/{name}"] = _document(item)
        for gone in self._known.get(ns, set()) - names:
            changes[f"{ns}/{gone}"] = None
        self._known[ns] = names
        self.state.apply(changes)
        self._listed.add(ns)
        self._set_connected(ns, True)
        if self._listed >= set(self.namespaces):
            if self.state.table is None:
                self.state.rebuild()
            self.state.synced = True
        return str(body["metadata"]["resourceVersion"])

    async def _watch(self, session: aiohttp.ClientSession, access: ApiAccess, ns: str, version: str) -> str:
        params = {"labelSelector": self.selector, "watch": "1", "resourceVersion": version,
                  "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}  # fmt: skip
        async with session.get(self._url(access, ns), params=params, headers=access.headers()) as resp:
            if resp.status == 410:
                raise Gone()
            if resp.status != 200:
                raise _http_error(resp, "watch")
            self._set_connected(ns, True)
            async for line in resp.content:
                if line.strip():
                    version = self._event(ns, json.loads(line), version)
        return version

    def _event(self, ns: str, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ValueError(f"watch error: {obj.get('message')}")
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion") or version)
        if kind == "BOOKMARK":
            return version
        name = meta.get("name")
        if not name:
            return version
        known = self._known.setdefault(ns, set())
        if kind == "DELETED":
            known.discard(name)
            self.state.apply({f"{ns}/{name}": None})
        elif kind in ("ADDED", "MODIFIED"):
            known.add(name)
            self.state.apply({f"{ns}/{name}": _document(obj)})
        return version

    def _set_connected(self, ns: str, up: bool) -> None:
        self._connected[ns] = up
        self.state.metrics.control_plane_connected = int(all(self._connected.get(n) for n in self.namespaces))


def _document(configmap: dict[str, Any]) -> bytes:
    """The ``route.json`` of a ConfigMap (b"" when missing, which the loader rejects with a clear error)."""
    data = configmap.get("data") or {}
    value = data.get(DATA_KEY)
    return value.encode("utf-8") if isinstance(value, str) else b""


def _http_error(resp: aiohttp.ClientResponse, verb: str) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(
        resp.request_info, (), status=resp.status, message=f"{verb} configmaps: HTTP {resp.status}"
    )
