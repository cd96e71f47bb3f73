"""The CanaryRoute controller: list + watch the routes, Upstreams (and TLS Secrets), queue what moved,
reconcile it with a few workers.

The informers (:mod:`graylane.operator.informer`) keep compact copies of the routes and Upstreams;
each change tells :class:`RouteIndex` and puts the keys it affects into one deduplicated
:class:`WorkQueue`: a route's own change, the routes naming or selecting a changed Upstream (not when only
its status moved), the routes naming a changed certificate Secret, the routes sharing a claim. Workers
(``WORKERS`` at a time) start once every store is listed and the ConfigMap cache is loaded, so a restart
compiles every route against the whole picture and, with nothing changed, writes nothing. Upstream status
writes wait behind every route. What the operator writes is put back into its store from the API's answer,
so the echo of its own write is recognised (same content) and not reconciled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graylane.operator import housekeeping
from graylane.operator.configmaps import delete_route_configmaps
from graylane.operator.informer import Store, follow, key_of
from graylane.operator.kubeapi import APIError, NotFound, custom_path, secrets_path
from graylane.operator.reconcile import reconcile_route
from graylane.operator.routes.index import Key, RouteIndex, compact, same
from graylane.operator.routes.queue import WorkQueue
from graylane.operator.state import OperatorState

from graylane.compile.route import upstream_url

log = logging.getLogger("graylane.operator")
Item = tuple[str, str, str]  # ("route" | "upstream", namespace, name)
WORKERS = 16
LOW_WORKERS = 8  # at most this many of them on Upstream statuses: half the API calls stay for routes
QUIET_SECONDS = 2.0  # Upstream statuses wait until no event queued work for this long...
TRICKLE_SECONDS = 1.0  # ...but one still starts this often, so a steady stream of routes starves none
RETRY_SECONDS = 1.0
ACTIVE_SECONDS = 5.0  # how long a peering check holds
SETTLED = ("Invalid", "UpstreamNotFound")  # fixed by an edit or an Upstream event, not by retrying


def _keep_route(obj: dict[str, Any]) -> Any:
    return compact(obj, "CanaryRoute")


def _keep_upstream(obj: dict[str, Any]) -> Any:
    return compact(obj, "Upstream")


def _keep_secret(obj: dict[str, Any]) -> Any:
    meta = obj.get("metadata") or {}
    return {"metadata": {k: meta.get(k) for k in ("name", "namespace", "resourceVersion")}}


class RouteController:
    def __init__(self, state: OperatorState, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.state, self.clock = state, clock
        self.index = RouteIndex()
        self.queue: WorkQueue[Item] = WorkQueue()
        self.waiting: list[asyncio.Future[None]] = []  # idle workers: each add wakes one
        self.deleted: dict[Key, str] = {}  # route key -> UID of a deleted route whose objects are still there
        self.listeners: list[Callable[[Key, Mapping[str, Any] | None], None]] = []  # the rollout loop's
        self.active_until = float("-inf")
        self.listed = asyncio.Event()  # every store listed once
        self.reconciled = 0
        self.low_busy = 0
        self.busy_at = self.low_started_at = float("-inf")  # last event that queued work; last low start
        self.idle = False  # said so in the log since the last item came
        spaces = state.config.namespaces or ("",)
        self.routes = {ns: self._store(custom_path("canaryroutes", ns or None), _keep_route,
                                       self._route_event) for ns in spaces}  # fmt: skip
        self.upstreams = {ns: self._store(custom_path("upstreams", ns or None), _keep_upstream,
                                          self._upstream_event) for ns in spaces}  # fmt: skip
        self.secrets = {}
        if state.config.mirror_tls_secrets:
            url = secrets_path  # certificate Secrets only, metadata kept
            self.secrets = {ns: self._store(url(ns) if ns else "/api/v1/secrets", _keep_secret,
                                            self._secret_event, fields="type=kubernetes.io/tls")
                            for ns in spaces}  # fmt: skip
        state.observe = self.observe

    @staticmethod
    def _store(url: str, keep: Callable[[dict[str, Any]], Any], hook: Any, fields: str = "") -> Store:
        return Store(url, fields=fields, keep=keep, on_event=hook)

    def stores(self) -> list[Store]:
        return [*self.routes.values(), *self.upstreams.values(), *self.secrets.values()]

    def route(self, key: Key) -> Mapping[str, Any] | None:
        store = self.routes.get(key[0]) or self.routes.get("")
        return store.objects.get(key) if store is not None else None

    def all_routes(self) -> Iterable[tuple[Key, Mapping[str, Any]]]:
        for store in list(self.routes.values()):
            yield from list(store.objects.items())

    def add(self, item: Item, *, delay: float = 0.0, low: bool = False) -> None:
        now = self.clock()
        self.queue.add(item, now=now, delay=delay, low=low)
        if delay <= 0:
            self.busy_at = now
        self.idle = self.idle and delay > 0
        self._wake_one()

    def _wake_one(self) -> None:
        while self.waiting:
            waiter = self.waiting.pop()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _route_event(self, key: Key, old: Any, new: Any) -> None:
        if old is not None and new is not None and same(old, new):
            return
        for affected in self.index.route_changed(key, old, new):
            self.add(("route", *affected))
        if new is None:
            self.deleted[key] = str(old["metadata"].get("uid"))
        for listener in self.listeners:
            listener(key, new)

    def _upstream_event(self, key: Key, old: Any, new: Any) -> None:
        if old is not None and new is not None and same(old, new):
            return
        for affected in self.index.upstream_changed(key, old, new):
            self.add(("route", *affected))
        if new is not None and _upstream_status(new)[1]:
            self.add(("upstream", *key), low=True)

    def _secret_event(self, key: Key, old: Any, new: Any) -> None:
        if old is None or new is None or old != new:
            for affected in self.index.routes_of_secret(key):
                self.add(("route", *affected))

    def observe(self, before: Mapping[str, Any], written: Any) -> None:
        """``written`` is what the API answered to our write of ``before``: keep it, unless the store moved
        on meanwhile (then the watch brings the newer one). Not an event: nothing is queued."""
        if not isinstance(written, dict):
            return
        key = key_of(written)
        stores = self.routes if before.get("kind") == "CanaryRoute" else self.upstreams
        store = stores.get(key[0]) or stores.get("")
        same_spec = (written.get("metadata") or {}).get("generation") == before["metadata"].get("generation")
        if store is not None and same_spec and store.objects.get(key) is before:
            store.objects[key] = store.keep(written)

    async def run(self, *, workers: int = WORKERS) -> None:
        api = self.state.require_api()
        tasks = [asyncio.create_task(follow(api, s, self._check_listed)) for s in self.stores()]
        tasks += [asyncio.create_task(self._worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _check_listed(self) -> None:
        if not self.listed.is_set() and all(s.synced for s in self.stores()):
            self.listed.set()

    async def _next(self) -> Item:
        await self.listed.wait()
        await self.state.cache_ready.wait()
        while True:
            now = self.clock()
            hold = self._low_hold(now)
            item: Item | None = self.queue.pop(now=now, low=hold == 0.0)
            if item is not None:
                if item[0] != "route":
                    self.low_busy, self.low_started_at = self.low_busy + 1, now
                return item
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)  # woken by an add or a freed low slot: low keys held back must
            due = self.queue.next_due(now=now, low=hold == 0.0)  # not make the idle workers spin
            if 0.0 < hold < float("inf"):  # and wake once they may go
                due = hold if due is None else min(due, hold)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout=due)
            if waiter in self.waiting:
                self.waiting.remove(waiter)

    def _low_hold(self, now: float) -> float:
        """Seconds until an Upstream status may start (0: now; ``inf``: once a low slot is free). They
        wait while objects are coming (one a second still starts): with 10,000 routes and their Upstreams
        created at once, their 19,501 writes would share the API server with the creates and the routes'
        own writes."""
        if self.low_busy >= LOW_WORKERS:
            return float("inf")
        until = min(self.busy_at + QUIET_SECONDS, self.low_started_at + TRICKLE_SECONDS)
        return max(0.0, until - now)

    async def _worker(self) -> None:
        while True:
            item = await self._next()
            try:
                delay = await self._work(item)
            except (APIError, OSError, TimeoutError) as exc:
                log.warning("Reconciling %s %s/%s failed, will retry: %r", *item, exc)
                delay = RETRY_SECONDS
            except Exception:  # a bug must not stop the worker (nor the operator): say it, retry later
                log.exception("Reconciling %s %s/%s crashed, will retry", *item)
                delay = self.state.config.resync_seconds
            self.queue.done(item, now=self.clock())
            if item[0] != "route":
                self.low_busy -= 1
                self._wake_one()  # a low slot is free again
            self.reconciled += 1
            if delay is not None:
                self.add(item, delay=delay, low=item[0] != "route")
            self._say_idle()

    def _say_idle(self) -> None:
        """Log once when nothing is left to do now (retries may wait): how much was done, written."""
        if self.idle or self.queue.busy() or self.queue.next_due(now=self.clock()) == 0.0:
            return
        self.idle = True
        writes = self.state.require_api().writes
        log.info("Idle after %d reconciles (%d API writes since start)", self.reconciled, writes)

    async def _work(self, item: Item) -> float | None:
        """Reconcile one item; the delay before it is tried again, if it must be."""
        if not await self._active():
            return float(self.state.config.resync_seconds)
        kind, key = item[0], (item[1], item[2])
        if kind == "upstream":
            await self._write_upstream_status(key)
            return None
        return await self.reconcile_key(key)

    async def _active(self) -> bool:
        if self.state.config.peering_name is None:
            return True
        now = self.clock()
        if now >= self.active_until:
            self.active_until = now + ACTIVE_SECONDS if await housekeeping.is_active(self.state) else now
        return now < self.active_until

    async def reconcile_key(self, key: Key) -> float | None:
        """Bring one route (and what a deleted one left) in line; the retry delay when it is not settled."""
        route = self.route(key)
        uid = self.deleted.pop(key, None)
        if uid is not None and (route is None or route["metadata"].get("uid") != uid):
            await self._forget(key, uid)
        if route is None:
            return None
        verdict = await reconcile_route(self.state, route, upstreams=self.index.upstreams_for(route),
                                        rivals=self.index.rivals(route), logger=log)  # fmt: skip
        settled: bool = verdict.ready or verdict.reason in SETTLED
        return None if settled else float(self.state.config.resync_seconds)

    async def _forget(self, key: Key, uid: str) -> None:
        api = self.state.require_api()
        names = await delete_route_configmaps(api, self.state.configmaps, route_uid=uid)
        if names:
            log.info("Deleted ConfigMaps %s of the deleted route %s/%s", names, *key)
        await housekeeping.delete_mirrored_secret(self.state, namespace=key[0], name=key[1], uid=uid)
        self.state.locks.pop(uid, None)

    async def _write_upstream_status(self, key: Key) -> None:
        upstream = self.index.upstream(*key)
        if upstream is None:
            return
        desired, differs = _upstream_status(upstream)
        if not differs:
            return
        url = custom_path("upstreams", *key) + "/status"
        with contextlib.suppress(NotFound):
            self.observe(upstream, await self.state.require_api().merge_patch(url, patch={"status": desired}))

    def resync(self) -> int:
        """Queue every route (the periodic resync); returns how many."""
        keys = [key for key, _ in self.all_routes()]
        for key in keys:
            self.add(("route", *key))
        return len(keys)


def _upstream_status(upstream: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The status the operator writes on an Upstream, and whether it differs from the current one."""
    meta = upstream["metadata"]
    desired = {"target": upstream_url(upstream.get("spec") or {}, meta["namespace"]),
               "observedGeneration": meta.get("generation")}  # fmt: skip
    current = upstream.get("status") or {}
    return desired, any(current.get(k) != v for k, v in desired.items())
