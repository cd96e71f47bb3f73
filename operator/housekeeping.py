"""Background housekeeping of the active replica: the orphan sweep, periodic resync and slow retries.

It runs beside Kopf's watches, which Kopf pauses on a replica that peering outranks; this loop applies the
same rule itself (only the highest-priority live peer acts), so two replicas never both write.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graylane.operator.informer import list_pages
from graylane.operator.kubeapi import APIError, Conflict, KubeAPI, configmaps_path, custom_path, secrets_path
from graylane.operator.state import OperatorState

from graylane.compile import names

Logger = logging.Logger | logging.LoggerAdapter[Any]


async def run(state: OperatorState, *, resync: Callable[[], int], logger: Logger) -> None:
    """Forever: when this replica is the active one, sweep orphans; after the first sweep, also queue every
    route again each ``sweep_seconds`` (``resync``; the first listing queued them all already)."""
    loop = asyncio.get_running_loop()
    last_sweep: float | None = None
    first = True
    await load_cache(state, logger=logger)
    while True:
        try:
            if not await is_active(state):
                last_sweep = None  # sweep as soon as we take over
            elif last_sweep is None or loop.time() - last_sweep >= state.config.sweep_seconds:
                await sweep(state, logger=logger)
                if not first:
                    logger.info(f"Resynced {resync()} routes")
                first, last_sweep = False, loop.time()
        except (APIError, OSError, TimeoutError) as exc:
            logger.warning(f"Housekeeping failed, will retry: {exc!r}")
        except Exception:  # a background task must never die silently
            logger.exception("Housekeeping crashed, will retry")
        await asyncio.sleep(state.config.resync_seconds)


async def load_cache(state: OperatorState, *, logger: Logger) -> None:
    """Fill the ConfigMap cache once (reconciles wait for it); API calls must wait for Kopf's login."""
    while not state.cache_ready.is_set():
        try:
            await state.configmaps.refresh(state.require_api())
        except (APIError, OSError, TimeoutError) as exc:
            logger.warning(f"Cannot list the route ConfigMaps yet: {exc!r}")
            await asyncio.sleep(1.0)
        else:
            state.cache_ready.set()


async def is_active(state: OperatorState) -> bool:
    """True unless a live peer with a priority >= ours is registered in the Kopf peering object."""
    config = state.config
    if config.peering_name is None:
        return True
    if config.namespaces:
        url = f"/apis/kopf.dev/v1/namespaces/{config.namespaces[0]}/kopfpeerings/{config.peering_name}"
    else:
        url = f"/apis/kopf.dev/v1/clusterkopfpeerings/{config.peering_name}"
    peering = await state.require_api().get(url)
    return not outranked(
        peering.get("status") or {}, identity=config.identity, priority=config.priority, now=state.now()
    )


def outranked(peers: Mapping[str, Any], *, identity: str, priority: int, now: datetime.datetime) -> bool:
    for peer_id, info in peers.items():
        if peer_id == identity or not isinstance(info, Mapping):
            continue
        try:
            seen = datetime.datetime.fromisoformat(str(info["lastseen"]))
            alive = seen + datetime.timedelta(seconds=int(info.get("lifetime", 60))) > now
            if alive and int(info.get("priority", 0)) >= priority:
                return True
        except (KeyError, TypeError, ValueError):
            continue
    return False


async def sweep(state: OperatorState, *, logger: Logger) -> list[str]:
    """Delete the route ConfigMaps whose route UID no longer exists (within the watched namespaces)."""
    api = state.require_api()
    await state.configmaps.refresh(api)  # ConfigMaps first: a route always exists before its ConfigMap
    live = await _live_route_uids(api, state.config.namespaces)
    deleted = []
    for written in list(state.configmaps.by_name.values()):
        if written.route_uid in live or not _in_scope(written.route_namespace, state.config.namespaces):
            continue
        try:
            await api.delete(
                configmaps_path(state.configmaps.namespace, written.name),
                uid=written.object_uid,
                resource_version=written.resource_version,
            )
        except Conflict:
            continue  # changed since we listed it: look again next time
        state.configmaps.discard(written.name)
        deleted.append(written.name)
    if deleted:
        logger.info(f"Swept orphaned route ConfigMaps: {deleted}")
    for kind in mirrored_kinds(state):
        await _sweep_secrets(state, live, kind=kind, logger=logger)
    return deleted


def mirrored_kinds(state: OperatorState) -> list[str]:
    """The kinds of Secrets this operator mirrors (``names.MIRROR_LABELS``): jwt, tls, as enabled."""
    enabled = {"jwt": state.config.mirror_jwt_secrets, "tls": state.config.mirror_tls_secrets}
    return [kind for kind, on in enabled.items() if on]


async def _sweep_secrets(state: OperatorState, live: set[str], *, kind: str, logger: Logger) -> None:
    """Delete mirrored Secrets of ``kind`` whose route UID no longer exists."""
    api, namespace = state.require_api(), state.config.config_namespace
    selector = f"{names.MIRROR_LABELS[kind]}=true,{names.MANAGED_BY_LABEL}={names.MANAGED_BY}"
    listing = await api.get(secrets_path(namespace) + f"?labelSelector={selector}")
    for item in listing.get("items") or []:
        meta = item["metadata"]
        labels = meta.get("labels") or {}
        if labels.get(names.ROUTE_UID_LABEL) in live:
            continue
        if not _in_scope(labels.get(names.ROUTE_NAMESPACE_LABEL, ""), state.config.namespaces):
            continue
        try:
            await api.delete(secrets_path(namespace, meta["name"]), uid=meta["uid"],
                             resource_version=meta["resourceVersion"])  # fmt: skip
        except Conflict:
            continue
        logger.info(f"Swept orphaned mirrored Secret {meta['name']}")


def _in_scope(namespace: str, namespaces: Iterable[str]) -> bool:
    scope = tuple(namespaces)
    return not scope or namespace in scope


async def _live_route_uids(api: KubeAPI, namespaces: tuple[str, ...]) -> set[str]:
    urls = [custom_path("canaryroutes", ns) for ns in namespaces] or [custom_path("canaryroutes")]
    uids: set[str] = set()
    for url in urls:
        async for page in list_pages(api, url):
            uids |= {item["metadata"]["uid"] for item in page.get("items") or []}
    return uids


async def delete_mirrored_secret(state: OperatorState, *, namespace: str, name: str, uid: str) -> None:
    """Delete the deleted route's mirrored Secrets (what is left is swept later)."""
    for kind in mirrored_kinds(state):
        secret = names.mirrored_secret_name(namespace, name, kind)
        try:
            await state.require_api().delete(secrets_path(state.config.config_namespace, secret), uid=None)
        except (APIError, Conflict):
            continue
