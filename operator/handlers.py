"""What Kopf runs: login, startup (the API client, the route controller, housekeeping), cleanup.

Kopf keeps what it is good at: login, peering, the liveness probe, the startup and cleanup of the background
tasks. The routes themselves are followed by the operator's own informer and queue
(:mod:`graylane.operator.routes.controller`): Kopf's per-object machinery (a worker task, a memory, loggers
and patch bookkeeping per object) cost ~4 ms of CPU and ~15 KiB per object at 10,000 routes.

No Kopf handler watches CanaryRoutes, so Kopf puts no finalizer on them: deleting a route (or uninstalling
Graylane) never blocks. The controller removes a deleted route's ConfigMap when the watch says so; a route
deleted while the operator was down is swept at startup. Everything here takes effect through
:func:`register` (called by ``cli.build_registry``), not on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
from graylane.operator import housekeeping
from graylane.operator.kubeapi import KubeAPI
from graylane.operator.routes.controller import RouteController
from graylane.operator.state import OperatorState

GROUP, VERSION = "graylane.io", "v1alpha1"
Logger = logging.Logger | logging.LoggerAdapter[Any]


async def startup(settings: kopf.OperatorSettings, memo: Any, logger: Logger, **_: Any) -> None:
    state: OperatorState = memo["state"]
    settings.posting.loggers = False  # only explicit Events (weight changes), not every log line
    settings.watching.server_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5]
    settings.scanning.disabled = not state.config.scan_cluster
    state.api = KubeAPI(settings=settings, logger=logging.getLogger("graylane.operator.api"))
    controller = RouteController(state)
    memo["routes"] = controller
    memo["routes_task"] = asyncio.create_task(controller.run(), name="graylane-route-controller")
    memo["housekeeping"] = asyncio.create_task(
        housekeeping.run(state, resync=controller.resync, logger=logger)
    )


async def cleanup(memo: Any, **_: Any) -> None:
    for name in ("housekeeping", "routes_task"):
        task = memo.get(name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the ServiceAccount token; elsewhere: ``$KUBECONFIG`` (or ``~/.kube/config``)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the operator's handlers to ``registry``; Kopf runs startup handlers in the order registered."""
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
