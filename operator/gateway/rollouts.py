"""TrafficPolicy rollouts: ramp one backendRef of an HTTPRoute, judged on the Gateway proxies' own metrics.

The Gateway controller's companion, one task of the active replica. Every ``interval`` of a rolling policy
it scrapes the proxies of the Gateways the policy's route is accepted by (the ready endpoints of each
Gateway's Service, on the proxies' admin port, plus any ``--proxy-metrics-url``), steps the same pure
machine as CanaryRoutes (:mod:`graylane.rollout.machine`, no manual weight: the rollout owns the rule's
weights) and wakes the controller, which compiles the new percent into the route's documents and writes
``status.rollout``.

The machine's state is the policy's ``status.rollout`` (read back on first sight: a restart or a takeover
resumes where it was); the window's samples are the only other state, in memory. See docs/gateway-api.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from graylane.operator import events, housekeeping
from graylane.operator.kubeapi import APIError
from graylane.operator.rollout import scrape
from graylane.operator.rollout.loop import RolloutSettings
from graylane.operator.state import OperatorState

from graylane.gateway.naming import object_name
from graylane.gateway.objects import Key
from graylane.gateway.policy import TrafficPolicy, parse_traffic_policy
from graylane.gateway.policyplan import Ancestor
from graylane.gateway.provision import ADMIN_PORT
from graylane.rollout import analysis
from graylane.rollout import machine as rollout

log = logging.getLogger("graylane.gateway")


class Controller(Protocol):
    """What the rollouts need of the Gateway controller."""

    state: OperatorState
    changed: asyncio.Event

    def objects(self, store: str) -> Mapping[Key, Mapping[str, Any]]: ...

    def ancestors(self, policy: Key) -> tuple[Ancestor, ...]: ...


def route_label(policy: TrafficPolicy) -> str:
    """The ``route`` label of the policy's HTTPRoute in the proxies' metrics."""
    return f"{policy.meta.namespace}/{policy.targets[0].name}"


def rolling(policy: TrafficPolicy) -> bool:
    return policy.rollout is not None and policy.problem is None and bool(policy.targets)


@dataclass
class PolicyRollouts:
    controller: Controller
    settings: RolloutSettings = field(default_factory=RolloutSettings)
    clock: Callable[[], float] = time.monotonic
    statuses: dict[str, rollout.RolloutStatus] = field(default_factory=dict)  # by policy UID
    window: analysis.MetricWindow = field(default_factory=lambda: analysis.MetricWindow(120.0))
    due: dict[str, float] = field(default_factory=dict)
    stepped: dict[str, int] = field(default_factory=dict)  # the generation each policy was last stepped at
    last_sample: float = float("-inf")

    def current(self, policy: TrafficPolicy) -> rollout.RolloutStatus:
        """The policy's rollout state: ours, or read back from its ``status.rollout``."""
        uid = policy.meta.uid
        if uid not in self.statuses:
            self.statuses[uid] = rollout.RolloutStatus.from_dict(policy.status_rollout)
        return self.statuses[uid]

    def weights(self, policies: Iterable[TrafficPolicy]) -> dict[Key, float]:
        """The canary percent to compile now, per rolling policy (abort: 0; not started: the first step)."""
        out = {}
        for policy in policies:
            if policy.rollout is None or not rolling(policy):
                continue
            spec, current = policy.rollout.spec, self.current(policy)
            if spec.abort:
                out[policy.meta.key] = 0.0
            else:
                started = current.phase in rollout.PHASES
                out[policy.meta.key] = current.canary_weight if started else spec.steps[0].weight
        return out

    def status_block(self, policy: TrafficPolicy) -> dict[str, Any] | None:
        """``status.rollout`` (its unset fields left out, so an unchanged status compares equal)."""
        if not rolling(policy) or self.current(policy).phase not in rollout.PHASES:
            return None
        block = self.current(policy).to_dict()
        block["message"] = block["message"][:4096]
        return {k: v for k, v in block.items() if v is not None}

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            while True:
                try:
                    await self.tick(session)
                except (APIError, OSError, TimeoutError) as exc:
                    log.warning("Policy rollout round failed, will retry: %r", exc)
                except Exception:  # a background task must never die silently
                    log.exception("Policy rollout round crashed, will retry")
                await asyncio.sleep(self.settings.tick_seconds)

    def rolling_policies(self) -> dict[str, TrafficPolicy]:
        """The valid rolling policies accepted for a Gateway, by UID (the others are forgotten)."""
        found = {}
        for obj in self.controller.objects("policies").values():
            if not (obj.get("spec") or {}).get("rollout"):
                continue  # parsed only when it rolls: this runs every tick
            policy = parse_traffic_policy(obj)
            ancestors = self.controller.ancestors(policy.meta.key)
            if rolling(policy) and ancestors and all(a.condition.status for a in ancestors):
                found[policy.meta.uid] = policy
                if self.stepped.get(policy.meta.uid) != policy.meta.generation:
                    self.due[policy.meta.uid] = float("-inf")  # a spec change (abort, pause): step now
        for uid in set(self.statuses) - set(found):
            self.statuses.pop(uid, None)
            self.due.pop(uid, None)
            self.stepped.pop(uid, None)
        return found

    async def tick(self, session: aiohttp.ClientSession) -> None:
        policies = self.rolling_policies()
        now = self.clock()
        due = [p for uid, p in policies.items() if self.due.get(uid, float("-inf")) <= now]
        if not due:
            return
        if not await housekeeping.is_active(self.controller.state):
            self.statuses.clear()  # a standby replica: read status back when it takes over
            return
        round_ = await self.scrape_round(session, due)
        now = self.last_sample = max(self.clock(), self.last_sample + 1e-6)
        longest = max(self.spec(p).analysis.window_seconds + self.spec(p).interval_seconds for p in due)
        self.window.retention_seconds = max(self.window.retention_seconds, longest + 5.0)
        self.window.add(now=now, snapshots=round_.snapshots)
        for policy in sorted(due, key=lambda p: p.meta.key):
            spec = self.spec(policy)
            new, said = rollout.step(
                spec, self.current(policy), now=self.controller.state.now(),
                figures=self.window.figures(route_label(policy), now=now,
                                            window_seconds=spec.analysis.window_seconds),
                scrape_ok=round_.ok, canary_revision=revision(policy), manual_weight=None,
            )  # fmt: skip
            self.statuses[policy.meta.uid] = new
            self.stepped[policy.meta.uid] = policy.meta.generation
            self.due[policy.meta.uid] = now + spec.interval_seconds
            for event in said:
                await self.post(policy, event)
        self.controller.changed.set()  # the documents and status.rollout follow

    @staticmethod
    def spec(policy: TrafficPolicy) -> rollout.RolloutSpec:
        assert policy.rollout is not None
        return policy.rollout.spec

    async def scrape_round(
        self, session: aiohttp.ClientSession, due: list[TrafficPolicy]
    ) -> scrape.ScrapeRound:
        """Scrape the proxies of every Gateway the due policies' routes are accepted by: the endpoints of
        each Gateway's Service (ready pods) on the proxies' admin port, plus ``--proxy-metrics-url``."""
        namespace = self.controller.state.config.config_namespace
        urls, failures = list(self.settings.metrics_urls), {}
        for service in sorted({s for p in due for s in self.gateway_services(p)}):
            try:
                slices = await self.controller.state.require_api().get(
                    scrape.endpointslices_path(namespace, service)
                )
            except (APIError, OSError, TimeoutError) as exc:
                failures["discovery"] = (
                    f"listing the EndpointSlices of Service {namespace}/{service}: {exc!r}"
                )
                continue
            urls += scrape.endpoint_urls(slices, port=ADMIN_PORT)
        found = await scrape.scrape(session, sorted(set(urls)), seconds=self.settings.scrape_timeout)
        failures |= found.failures
        if not urls and "discovery" not in failures:
            failures["discovery"] = "no Gateway proxies found"
        return scrape.ScrapeRound(found.snapshots, failures)

    def gateway_services(self, policy: TrafficPolicy) -> list[str]:
        """The Services the controller provisioned for the Gateways the policy's route is accepted by."""
        refs = [a.ref for a in self.controller.ancestors(policy.meta.key) if a.ref.get("kind") == "Gateway"]
        return [object_name(str(r.get("namespace")), str(r.get("name"))) for r in refs]

    async def post(self, policy: TrafficPolicy, event: str) -> None:
        obj = self.controller.objects("policies").get(policy.meta.key)
        if obj is None:
            return
        kind, reason, message = rollout.split_event(event)
        log.info("Rollout %s/%s: %s: %s", *policy.meta.key, reason, message)
        await events.post_event(self.controller.state, obj, kind, reason, message, logger=log)


def revision(policy: TrafficPolicy) -> str:
    """The canary's identity for ``step``: the policy and the backendRef it ramps (naming another restarts
    the rollout; so does ``abort: true`` then ``false``, as on a CanaryRoute)."""
    assert policy.rollout is not None
    return f"{policy.meta.uid}/{policy.rollout.canary.label}"
