"""Kube mode: route documents from ConfigMaps labelled ``graylane.io/route-config=true`` (data key
``route.json``), through the API with aiohttp — list, then watch from the list's resourceVersion. The same
list + watch follows other feeds: with an HTTPS listener, the ``kubernetes.io/tls`` Secrets
(:class:`~graylane.proxy.sources.secrets.TlsSecrets`).

* The list comes in pages of ``PAGE`` (500) objects (``limit``/``continue``); a page of route ConfigMaps is
  in the table before the next is read, so 10,000 routes never sit in memory as one parsed list. Listed and
  watched documents go through the state's :class:`~graylane.proxy.routing.updates.Updates` (one waiting
  document per ConfigMap: bursts coalesce, nothing queues without bound); one watch event is one line of
  at most ``MAX_EVENT_BYTES`` (a ConfigMap holds 1 MiB of data).

* A watch that ends is resumed from the last resourceVersion seen (bookmarks included); ``410 Gone`` (or an
  ERROR event) means re-list. Connection failures retry with jittered exponential backoff (0.5 s .. 30 s).
* The last good table keeps serving while the API is unreachable (``graylane_control_plane_connected`` 0).
* Cold start without the API: no table, ``/readyz`` not ready, the data plane answers 503 — never a default
  route. Readiness comes with the first successful list of every feed in every watched namespace.
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
from graylane.proxy.sources.feeds import NamedFeed
from graylane.proxy.sources.kubeconfig import ApiAccess, load
from graylane.proxy.sources.secrets import KubeSecrets, TlsSecrets

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RouteState

log = logging.getLogger("graylane.proxy")

LABEL = "graylane.io/route-config=true"
DATA_KEY = "route.json"
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
WATCH_SECONDS = 240
PAGE = 500

MAX_EVENT_BYTES = 4 * 1024 * 1024  # an event line: a 1 MiB document, escaped, plus the object's metadata


class Gone(Exception):
    """The resourceVersion is too old: list again."""


class RouteDocuments:
    """Route ConfigMaps -> the state's coalescing :class:`~graylane.proxy.routing.updates.Updates` (a deleted
    or no longer listed one removes its route)."""

    def __init__(self, state: RouteState) -> None:
        self.state = state

    def put(self, ns: str, name: str, obj: dict[str, Any]) -> None:
        self.state.updates.offer(f"{ns}/{name}", _document(obj))

    def drop(self, ns: str, name: str) -> None:
        self.state.updates.offer(f"{ns}/{name}", None)

    def flush(self) -> None:
        """Nothing to do: the updates task applies what waits."""


class KubeSource:
    def __init__(self, *, access: ApiAccess | None, kubeconfig: str | None, namespaces: tuple[str, ...],
                 state: RouteState, selector: str = LABEL) -> None:  # fmt: skip
        self._access = access
        self.selector = selector
        self._kubeconfig = kubeconfig
        self.state = state
        self.namespaces = namespaces
        self.feeds = [NamedFeed("configmaps", {"labelSelector": selector}, RouteDocuments(state))]
        if state.tls is not None:
            sink = TlsSecrets(state.tls.secrets, on_change=state.tls.reload)
            self.feeds.append(NamedFeed("secrets", {"fieldSelector": TlsSecrets.SELECTOR}, sink))
        self._listed: set[tuple[str, str]] = set()
        self._connected: dict[tuple[str, str], bool] = {}

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
        # one watch event is one line: a 1 MiB document, JSON-escaped, plus metadata (aiohttp's line limit is
        # twice read_bufsize; the default 64 KiB broke the watch on big documents, which re-listed forever)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, read_bufsize=MAX_EVENT_BYTES // 2
        ) as session:
            await asyncio.gather(
                *(self._follow(session, access, ns, feed) for ns in namespaces for feed in self.feeds),
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

    async def _follow(
        self, session: aiohttp.ClientSession, access: ApiAccess, ns: str, feed: NamedFeed
    ) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                version = await self._list(session, access, ns, feed)
                delay = BACKOFF_MIN
                while True:
                    version = await self._watch(session, access, ns, feed, version)
            except Gone:
                log.info("watch of %s in %s expired (410): listing again", feed.resource, ns)
                continue
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                self._set_connected(ns, feed, False)
                pause = random.uniform(delay / 2, delay)
                log.warning("kube API for %s in namespace %s: %s; retrying in %.1fs", feed.resource, ns,
                            exc or type(exc).__name__, pause)  # fmt: skip
                await asyncio.sleep(pause)
                delay = min(delay * 2, BACKOFF_MAX)

    def _url(self, access: ApiAccess, ns: str, feed: NamedFeed) -> str:
        return f"{access.server}/api/v1/namespaces/{ns}/{feed.resource}"

    async def _list(self, session: aiohttp.ClientSession, access: ApiAccess, ns: str, feed: NamedFeed) -> str:
        url = self._url(access, ns, feed)
        params = {**feed.selector, "limit": str(PAGE)}
        names: set[str] = set()
        body = await self._page(session, access, url, params, feed)
        while True:
            meta = body["metadata"]
            token = meta.get("continue")
            ahead = (  # the next page is read while this one is applied
                asyncio.ensure_future(self._page(session, access, url, {**params, "continue": token}, feed))
                if token
                else None
            )
            try:
                names |= feed.page(ns, body.pop("items", None) or [])
                await self.state.updates.settle()  # this page is in the table before the next is taken in
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                raise
            if ahead is None:
                break
            body = await ahead
        feed.listed_all(ns, names)
        await self.state.updates.settle()
        self._listed.add((ns, feed.resource))
        self._set_connected(ns, feed, True)
        if self._listed >= {(n, f.resource) for n in self.namespaces for f in self.feeds}:
            self.state.synced = True
        return str(meta["resourceVersion"])

    async def _page(
        self,
        session: aiohttp.ClientSession,
        access: ApiAccess,
        url: str,
        params: dict[str, str],
        feed: NamedFeed,
    ) -> dict[str, Any]:
        async with session.get(url, params=params, headers=access.headers()) as resp:
            if resp.status == 410:  # the continue token expired: list again from the start
                raise Gone()
            if resp.status != 200:
                raise _http_error(resp, f"list {feed.resource}")
            body: dict[str, Any] = await resp.json()
        return body

    async def _watch(
        self, session: aiohttp.ClientSession, access: ApiAccess, ns: str, feed: NamedFeed, version: str
    ) -> str:
        params = {**feed.selector, "watch": "1", "resourceVersion": version,
                  "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}  # fmt: skip
        async with session.get(self._url(access, ns, feed), params=params, headers=access.headers()) as resp:
            if resp.status == 410:
                raise Gone()
            if resp.status != 200:
                raise _http_error(resp, f"watch {feed.resource}")
            self._set_connected(ns, feed, True)
            async for line in resp.content:  # lines up to 2 x read_bufsize (the session's)
                if line.strip():
                    version = _event(ns, feed, json.loads(line), version)
        return version

    def _set_connected(self, ns: str, feed: NamedFeed, up: bool) -> None:
        self._connected[(ns, feed.resource)] = up
        pairs = [(n, f.resource) for n in self.namespaces for f in self.feeds]
        self.state.metrics.control_plane_connected = int(all(self._connected.get(p) for p in pairs))


def _event(ns: str, feed: NamedFeed, event: dict[str, Any], version: str) -> str:
    kind, obj = event.get("type"), event.get("object") or {}
    if kind == "ERROR":
        if obj.get("code") == 410:
            raise Gone()
        raise ValueError(f"watch error: {obj.get('message')}")
    meta = obj.get("metadata") or {}
    version = str(meta.get("resourceVersion") or version)
    if kind in ("ADDED", "MODIFIED", "DELETED"):
        feed.changed(ns, str(kind), obj)
    return version


def _document(configmap: dict[str, Any]) -> bytes:
    """The ``route.json`` of a ConfigMap (b"" when missing, which the loader rejects with a clear error)."""
    data = configmap.get("data") or {}
    value = data.get(DATA_KEY)
    return value.encode("utf-8") if isinstance(value, str) else b""


def _http_error(resp: aiohttp.ClientResponse, what: str) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(
        resp.request_info, (), status=resp.status, message=f"{what}: HTTP {resp.status}"
    )
