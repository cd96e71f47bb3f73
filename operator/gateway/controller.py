"""The Gateway API controller (``--gateway-api``): follow the resources, plan, write what differs.

One background task of the active replica (it checks Kopf peering itself, like housekeeping). Every change
of a followed resource wakes it; it plans the whole world again (:func:`graylane.gateway.plan.plan`, pure)
and lets :mod:`.apply` write the owned objects and the statuses that differ. A failed write is retried
after a second; a replica that is not the active one re-checks every ``resync_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import kopf
from graylane.operator import housekeeping
from graylane.operator.gateway.apply import apply_owned, patch_status
from graylane.operator.gateway.rollouts import PolicyRollouts
from graylane.operator.gateway.world import GRAYLANE_API, GW_API, Stores
from graylane.operator.informer import follow
from graylane.operator.kubeapi import APIError, KubeAPI, NotFound, api_path
from graylane.operator.rollout.loop import RolloutSettings
from graylane.operator.state import OperatorState

from graylane.gateway import conditions, provision
from graylane.gateway.objects import Key
from graylane.gateway.plan import Plan, World, plan
from graylane.gateway.policy import parse_traffic_policy
from graylane.gateway.policyplan import Ancestor
from graylane.gateway.routes import parse_http_route
from graylane.gateway.status import class_status, gateway_status, policy_status, route_status

log = logging.getLogger("graylane.gateway")
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.gateway.networking.k8s.io"
BUNDLE_ANNOTATION = "gateway.networking.k8s.io/bundle-version"
RETRY_SECONDS = 1.0


class GatewayController:
    def __init__(self, state: OperatorState, rollout: RolloutSettings | None = None) -> None:
        self.state = state
        self.stores = Stores(state.config.config_namespace, state.config.gateway_template, now=state.now)
        self.changed = asyncio.Event()
        self.bundle_version: str | None = None
        self.reconciles = 0
        self.planned: Plan | None = None
        self.rollouts = PolicyRollouts(self, rollout or RolloutSettings())

    def objects(self, store: str) -> Mapping[Key, Mapping[str, Any]]:
        found: Mapping[Key, Mapping[str, Any]] = self.stores[store].objects
        return found

    def ancestors(self, policy: Key) -> tuple[Ancestor, ...]:
        """A TrafficPolicy's ancestors as last planned (none before the first plan)."""
        return self.planned.policies.get(policy, ()) if self.planned is not None else ()

    async def run(self) -> None:
        api = self.state.require_api()
        followers = [asyncio.create_task(follow(api, s, self.changed.set)) for s in self.stores.all.values()]
        followers.append(asyncio.create_task(self.rollouts.run(), name="graylane-policy-rollouts"))
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.changed.wait()
                self.changed.clear()
                if not self.stores.synced:
                    continue
                if not await housekeeping.is_active(self.state):
                    loop.call_later(self.state.config.resync_seconds, self.changed.set)
                    continue
                try:
                    await self.reconcile(api)
                except (APIError, OSError, TimeoutError) as exc:
                    log.warning("Gateway reconcile failed, retrying: %r", exc)
                    loop.call_later(RETRY_SECONDS, self.changed.set)
                except (
                    Exception
                ):  # a bug must not stop the controller (nor the operator): say it, retry later
                    log.exception(
                        "Gateway reconcile crashed; retrying in %ss", self.state.config.resync_seconds
                    )
                    loop.call_later(self.state.config.resync_seconds, self.changed.set)
        finally:
            for task in followers:
                task.cancel()
            for task in followers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def reconcile(self, api: KubeAPI) -> None:
        if self.bundle_version is None:
            self.bundle_version = await _bundle_version(api)
        world = self.stores.world()
        world = replace(world, rollout_weights=self.rollouts.weights(world.policies))
        planned = self.planned = plan(world)
        await self._objects(api, planned)
        await self._statuses(api, world, planned)
        self.reconciles += 1

    async def _objects(self, api: KubeAPI, planned: Plan) -> None:
        ns, template = self.stores.namespace, self.stores.template_spec()
        deployments, services, configmaps, secrets = [], [], [], []
        certificates = self.stores.certificate_data()
        for gp in planned.gateways.values():
            if not gp.ports or not gp.conditions[0].status:
                continue  # nothing to serve: no proxies
            services.append(provision.service(gp, namespace=ns))
            configmaps.extend(provision.configmaps(gp, namespace=ns))
            secrets.extend(provision.secrets(gp, namespace=ns, data=certificates))
            if template is not None:
                deployments.append(provision.deployment(gp, namespace=ns, template=template))
        if template is None and services:
            log.warning(
                "no pod template in ConfigMap %s/%s: Gateways get no proxies", ns, self.stores.template
            )
        await apply_owned(api, kind="Secret", namespace=ns, desired=secrets,
                          current=self.stores["own_secrets"].objects)  # fmt: skip
        await apply_owned(api, kind="ConfigMap", namespace=ns, desired=configmaps,
                          current=self.stores["configmaps"].objects)  # fmt: skip
        await apply_owned(api, kind="Service", namespace=ns, desired=services,
                          current=self.stores["own_services"].objects)  # fmt: skip
        await apply_owned(api, kind="Deployment", namespace=ns, desired=deployments,
                          current=self.stores["deployments"].objects)  # fmt: skip

    async def _statuses(self, api: KubeAPI, world: World, planned: Plan) -> None:
        now = self.state.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        classes = {k.meta.name: k for k in world.classes}
        for name, conds in planned.classes.items():
            obj = self.stores["classes"].objects.get(("", name))
            if obj is None:
                continue  # deleted while this pass wrote (the stores move on during every await)
            current = obj.get("status") or {}
            desired = class_status(classes[name], conds, bundle_version=self.bundle_version, now=now,
                                   previous=current)  # fmt: skip
            await patch_status(api, api_path(GW_API, "gatewayclasses", None, name), current=current,
                               desired=desired)  # fmt: skip
        for key, gp in planned.gateways.items():
            obj = self.stores["gateways"].objects.get(key)
            if obj is None:
                continue
            current = obj.get("status") or {}
            desired = gateway_status(gp, now=now, previous=current)
            await patch_status(api, api_path(GW_API, "gateways", *key), current=current, desired=desired)
        await self._route_statuses(api, planned, now)
        await self._policy_statuses(api, planned, now)

    async def _route_statuses(self, api: KubeAPI, planned: Plan, now: str) -> None:
        controller = conditions.CONTROLLER
        for key, obj in list(self.stores["routes"].objects.items()):
            route = parse_http_route(obj)
            parents = planned.routes.get(key)
            if parents is None and not any(
                p.get("controllerName") == controller for p in route.status_parents
            ):
                continue  # neither ours now nor before
            desired = route_status(route, parents or (), controller=controller, now=now)
            current = obj.get("status") or {}
            version = (obj.get("metadata") or {}).get("resourceVersion")
            await patch_status(api, api_path(GW_API, "httproutes", *key), current=current, desired=desired,
                               version=version)  # fmt: skip

    async def _policy_statuses(self, api: KubeAPI, planned: Plan, now: str) -> None:
        """TrafficPolicies: ``status.ancestors`` (GEP-713), written only when it differs."""
        for key, obj in list(self.stores["policies"].objects.items()):
            ancestors = planned.policies.get(key, ())
            policy = parse_traffic_policy(obj)
            desired = policy_status(policy, ancestors, controller=conditions.CONTROLLER, now=now)
            desired["rollout"] = self.rollouts.status_block(policy)  # None: removed (or never there)
            version = (obj.get("metadata") or {}).get("resourceVersion")
            await patch_status(api, api_path(GRAYLANE_API, "trafficpolicies", *key),
                               current=obj.get("status") or {}, desired=desired, version=version)  # fmt: skip


async def _bundle_version(api: KubeAPI) -> str | None:
    try:
        crd = await api.get(CRD)
    except (NotFound, APIError):
        return None  # not installed, or no right to read it: SupportedVersion says so
    value = ((crd.get("metadata") or {}).get("annotations") or {}).get(BUNDLE_ANNOTATION)
    return str(value) if value else None


async def start_gateways(memo: Any, **_: Any) -> None:
    state: OperatorState = memo["state"]
    if state.config.gateway_api:
        controller = GatewayController(state, memo.get("rollout_settings"))
        memo["gateway_controller"] = controller
        memo["gateway_task"] = asyncio.create_task(controller.run(), name="graylane-gateway-controller")


async def stop_gateways(memo: Any, **_: Any) -> None:
    task = memo.get("gateway_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def register(registry: kopf.OperatorRegistry) -> None:
    """After the operator's own startup handler (it sets up the API client)."""
    kopf.on.startup(registry=registry)(start_gateways)
    kopf.on.cleanup(registry=registry)(stop_gateways)
