"""The operator's settings and its in-memory state (kept in Kopf's memo; nothing here is global)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.operator.configmaps import ConfigMapStore
from graylane.operator.kubeapi import KubeAPI


def spec_weight(route: Mapping[str, Any]) -> float:
    """Without rollouts: what ``spec.weight`` says (``cli.build`` wires the rollout book's policy)."""
    weight = (route.get("spec") or {}).get("weight", 0)
    return float(weight) if isinstance(weight, int | float) and not isinstance(weight, bool) else 0.0


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    config_namespace: str
    """Where the route ConfigMaps (and mirrored JWT Secrets) go: the Graylane install namespace."""
    namespaces: tuple[str, ...] = ()
    """Watched route namespaces; empty means all namespaces."""
    mirror_jwt_secrets: bool = False
    """Mirror HS* ``secretRef`` Secrets into the install namespace (needs ``get`` on Secrets)."""
    mirror_tls_secrets: bool = False
    """Mirror ``spec.tls`` certificates into the install namespace (needs list/watch on Secrets)."""
    resync_seconds: float = 30.0
    """How often routes that are not Ready (missing Secret, conflict, API trouble) are retried."""
    sweep_seconds: float = 300.0
    """How often orphaned ConfigMaps are swept and every route is re-checked."""
    identity: str = ""
    """This replica's Kopf peering identity."""
    priority: int = 0
    peering_name: str | None = None
    gateway_api: bool = False
    """Run the Gateway API controller (``--gateway-api``): GatewayClasses naming
    graylane.io/gateway-controller, their Gateways and HTTPRoutes (chart: ``gatewayAPI.enabled``)."""
    gateway_template: str = "graylane-gateway-proxy"
    """The ConfigMap in ``config_namespace`` holding the pod template of Gateway proxies (the chart's)."""
    scan_cluster: bool = False
    """Let Kopf watch Namespaces and CRDs for changes (needs cluster-wide list/watch on both; the chart grants
    it with ``operator.watchCRDs``). Off, Kopf serves the given namespaces and the CRDs found at startup,
    without retrying forbidden cluster-wide listings at every start."""
    """``None`` means standalone (no peering): this replica always writes."""


@dataclass
class OperatorState:
    config: OperatorConfig
    configmaps: ConfigMapStore
    api: KubeAPI | None = None
    weight_of: Callable[[Mapping[str, Any]], float] = spec_weight
    """The canary weight to apply now for a route (set once, at construction)."""
    mirror_of: Callable[[Mapping[str, Any]], float | None] = lambda route: None
    """The mirror percent a rollout's shadow step applies now (None: ``spec.mirror`` as written)."""
    status_extra: Callable[[Mapping[str, Any]], Mapping[str, Any]] = lambda route: {}
    """Extra status fields for a route (the rollout loop's; may override ``phase``), written with ours."""
    now: Callable[[], datetime.datetime] = utc_now
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    observe: Callable[[Mapping[str, Any], Any], None] = lambda before, written: None
    """Told ``(object read, API answer)`` after each status write: the route controller keeps the answer, so
    the watch echo of its own write is known (set by the controller)."""
    cache_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def lock_for(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def require_api(self) -> KubeAPI:
        if self.api is None:
            raise RuntimeError("the operator's API client is set up at startup")
        return self.api
