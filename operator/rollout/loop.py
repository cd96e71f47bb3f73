"""The rollout loop: for every route with ``spec.rollout``, each ``interval``, scrape the proxies and step.

One background task of the active replica (like housekeeping, it checks Kopf peering itself, so a standby
replica neither scrapes nor writes). Each round: find the proxies, scrape them all at once, add the round to
the process's one ``MetricWindow``, and for each route that is due: ``rollout.step`` → the book → the normal
reconcile path (ConfigMap first, then status) → Events. A spec change (abort, pause, a manual weight) makes
its route due at once, so abort reaches the proxies within one interval at the latest.

The window's samples are the only state kept in memory; everything else is in ``status``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf
from graylane.operator import events, housekeeping
from graylane.operator.kubeapi import APIError
from graylane.operator.rollout import scrape
from graylane.operator.rollout.book import METRICS_AVAILABLE, PROPAGATED, RolloutBook, condition, rollout_of
from graylane.operator.routes.controller import RouteController
from graylane.operator.state import OperatorState
from graylane.operator.status import TLS_REASONS

from graylane.rollout import analysis
from graylane.rollout import machine as rollout

Logger = logging.Logger | logging.LoggerAdapter[Any]
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RolloutSettings:
    metrics_urls: tuple[str, ...] = ()
    """Fixed proxy ``/metrics`` URLs (``--proxy-metrics-url``)."""
    proxy_service: str | None = None
    """The proxy admin Service whose EndpointSlices (in the config namespace) list the proxies."""
    tick_seconds: float = 0.2
    scrape_timeout: float = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy-metrics-url", action="append", default=[], metavar="URL",
                        help="a proxy's /metrics URL for the rollout analysis (repeatable)")  # fmt: skip
    parser.add_argument("--proxy-service", metavar="NAME",
                        help="find the proxies from this admin Service's EndpointSlices")  # fmt: skip
    parser.add_argument("--scrape-timeout", type=float, default=RolloutSettings().scrape_timeout,
                        help="seconds per proxy scrape")  # fmt: skip


def settings_from(args: argparse.Namespace) -> RolloutSettings:
    return RolloutSettings(
        metrics_urls=tuple(args.proxy_metrics_url),
        proxy_service=args.proxy_service,
        scrape_timeout=args.scrape_timeout,
    )


@dataclass
class RolloutLoop:
    state: OperatorState
    settings: RolloutSettings
    routes: RouteController
    clock: Callable[[], float] = time.monotonic
    book: RolloutBook = field(default_factory=RolloutBook)
    window: analysis.MetricWindow = field(default_factory=lambda: analysis.MetricWindow(120.0))
    due: dict[str, float] = field(default_factory=dict)
    stepped_generation: dict[str, int] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_sample: float = float("-inf")
    keys: set[Key] = field(default_factory=set)
    """The routes with ``spec.rollout`` (a tick looks at these, not at every route)."""

    def track(self, key: Key, route: Mapping[str, Any] | None) -> None:
        if route is not None and rollout_of(route) is not None:
            self.keys.add(key)
        else:
            self.keys.discard(key)

    def poke(self, key: Key, route: Mapping[str, Any] | None) -> None:
        """A route changed (None: deleted): if its spec did (a new generation), step it now."""
        self.track(key, route)
        if route is None or key not in self.keys:
            return
        meta = route.get("metadata") or {}
        if meta.get("generation") != self.stepped_generation.get(str(meta.get("uid"))):
            self.due[str(meta.get("uid"))] = float("-inf")
            self.wake.set()

    async def run(self, *, logger: Logger) -> None:
        await self.routes.listed.wait()  # the routes and Upstreams are listed first
        await self.state.cache_ready.wait()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            while True:
                try:
                    await self.tick(session, logger=logger)
                except (APIError, OSError, TimeoutError) as exc:
                    logger.warning(f"Rollout round failed, will retry: {exc!r}")
                except Exception:  # a background task must never die silently
                    logger.exception("Rollout round crashed, will retry")
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.settings.tick_seconds)

    def rollout_routes(self) -> dict[str, tuple[Key, Mapping[str, Any], rollout.RolloutSpec]]:
        """Routes with a valid ``spec.rollout`` that have been compiled, by UID (forgets the others)."""
        found = {}
        for key in list(self.keys):
            route = self.routes.route(key)
            if route is None:
                continue
            spec, uid = rollout_of(route), str(route["metadata"]["uid"])
            if (
                isinstance(spec, rollout.RolloutSpec)
                and self.state.configmaps.for_route(uid)
                and _ready(route)
            ):
                found[uid] = (key, route, spec)
        for uid in set(self.book.statuses) - set(found):
            self.book.forget(uid)
            self.due.pop(uid, None)
            self.stepped_generation.pop(uid, None)
        return found

    async def tick(self, session: aiohttp.ClientSession, *, logger: Logger) -> None:
        routes = self.rollout_routes()
        now = self.clock()
        due = {uid: r for uid, r in routes.items() if self.due.get(uid, float("-inf")) <= now}
        if not due:
            return
        if not await housekeeping.is_active(self.state):
            self.book.statuses.clear()  # a standby replica: read status back when we take over
            return
        round_ = await self.scrape_round(session)
        now = max(self.clock(), self.last_sample + 1e-6)
        self.last_sample = now
        longest = max(s.analysis.window_seconds + s.interval_seconds for _, _, s in routes.values())
        self.window.retention_seconds = longest + 5.0
        self.window.add(now=now, snapshots=round_.snapshots)
        for uid, (key, route, spec) in sorted(due.items(), key=lambda item: item[1][0]):
            events = self.step_route(route, spec, round_, now=now)
            self.due[uid] = now + spec.interval_seconds
            await self.routes.reconcile_key(key)
            for event in events:
                await post_event(self.state, route, *rollout.split_event(event), logger=logger)

    async def scrape_round(self, session: aiohttp.ClientSession) -> scrape.ScrapeRound:
        urls, problem = await scrape.discover(
            self.state.api,
            static_urls=self.settings.metrics_urls,
            namespace=self.state.config.config_namespace,
            service=self.settings.proxy_service,
        )
        found = await scrape.scrape(session, urls, seconds=self.settings.scrape_timeout)
        failures = dict(found.failures)
        if problem is not None:
            failures["discovery"] = problem
        elif not urls:
            failures["discovery"] = "no proxies found (--proxy-service / --proxy-metrics-url)"
        return scrape.ScrapeRound(found.snapshots, failures)

    def step_route(
        self, route: Mapping[str, Any], spec: rollout.RolloutSpec, round_: scrape.ScrapeRound, *, now: float
    ) -> list[str]:
        """One interval of one route: ``step``, then the book (status and conditions) is updated."""
        meta, route_spec = route["metadata"], route.get("spec") or {}
        key, uid = f"{meta['namespace']}/{meta['name']}", str(meta["uid"])
        generation = int(meta.get("generation") or 0)
        name = route_spec.get("canary")
        canary = self.routes.index.upstream(meta["namespace"], name) if isinstance(name, str) else None
        manual = route_spec.get("weight")
        wall = self.state.now()
        new, events = rollout.step(
            spec,
            self.book.current(route),
            now=wall,
            figures=self.window.figures(key, now=now, window_seconds=spec.analysis.window_seconds),
            scrape_ok=round_.ok,
            canary_revision=rollout.canary_revision(route, canary),
            manual_weight=float(manual) if isinstance(manual, int | float) else None,
        )
        self.book.statuses[uid] = new
        self.stepped_generation[uid] = generation
        self.book.conditions[uid] = _conditions(
            round_, key, generation, new, previous=self.book.conditions.get(uid), now=wall
        )
        return events


def _ready(route: Mapping[str, Any]) -> bool:
    """False when the Ready condition is False (no Upstream, a conflict): such a route is not stepped. A TLS
    problem leaves the route served (``status.TLS_REASONS``): its rollout goes on, rollbacks included."""
    conditions = (route.get("status") or {}).get("conditions") or []
    return not any(
        c.get("type") == "Ready" and c.get("status") == "False" and c.get("reason") not in TLS_REASONS
        for c in conditions
        if isinstance(c, Mapping)
    )


def _conditions(
    round_: scrape.ScrapeRound,
    key: str,
    generation: int,
    new: rollout.RolloutStatus,
    *,
    previous: Any,
    now: Any,
) -> list[dict[str, Any]]:
    seen = sum(1 for s in round_.snapshots.values() if s.generations.get(key, -1) >= generation)
    total = len(round_.snapshots) + len([u for u in round_.failures if u != "discovery"])
    ok = analysis.propagated(round_.snapshots, key, generation) and not round_.failures
    reason = "AllProxies" if ok else ("NoProxies" if total == 0 else "Pending")
    propagated = condition(
        PROPAGATED, ok, reason=reason, message=f"{seen}/{total} proxies serve generation {generation}",
        generation=generation, previous=previous, now=now,
    )  # fmt: skip
    why = "; ".join(f"{url}: {what}" for url, what in sorted(round_.failures.items())) or "scrapes succeed"
    metrics = condition(
        METRICS_AVAILABLE, not new.metrics_unavailable,
        reason="ScrapeFailed" if new.metrics_unavailable else "Scraped",
        message=f"{new.consecutive_scrape_errors} consecutive failed scrapes; last: {why}",
        generation=generation, previous=previous, now=now,
    )  # fmt: skip
    return [propagated, metrics]


async def post_event(
    state: OperatorState, route: Mapping[str, Any], kind: str, reason: str, message: str, *, logger: Logger
) -> None:
    """A Kubernetes Event on the route for a rollout transition (best effort: never fails the round)."""
    meta = route["metadata"]
    logger.info(f"Rollout {meta['namespace']}/{meta['name']}: {reason}: {message}")
    await events.post_event(state, route, kind, reason, message, logger=logger)


async def start_rollouts(memo: Any, logger: Logger, **_: Any) -> None:
    """Runs after the operator's own startup (registered after it); reconcile already asks the same book
    (``OperatorState.weight_of`` / ``status_extra``, wired by ``cli.build``)."""
    state: OperatorState = memo["state"]
    routes: RouteController = memo["routes"]
    loop = RolloutLoop(state, memo["rollout_settings"], routes, book=memo["rollout_book"])
    for key, route in routes.all_routes():  # listed before we listen, if any
        loop.track(key, route)
    routes.listeners.append(loop.poke)  # a route's spec changed: step it now
    memo["rollout"] = loop
    memo["rollout_task"] = asyncio.create_task(loop.run(logger=logger))


async def stop_rollouts(memo: Any, **_: Any) -> None:
    task = memo.get("rollout_task")
    if task is not None:
        task.cancel()


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the rollout loop's handlers to ``registry``, after :func:`handlers.register` (its startup
    handler needs the API client and the route controller that the operator's own startup sets up)."""
    kopf.on.startup(registry=registry)(start_rollouts)
    kopf.on.cleanup(registry=registry)(stop_rollouts)
