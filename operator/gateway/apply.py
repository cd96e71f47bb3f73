"""The one writer of the Gateway controller: owned objects and statuses, each written only when it differs.

Owned objects (Deployments, Services, ConfigMaps, certificate Secrets in the install namespace) carry the
checksum of their desired body: equal checksum, no write; a missing object is created; one no longer desired
is deleted with its UID as precondition. Statuses are merge patches of the ``status`` subresource, sent only
when the rendered status differs from the object's (HTTPRoutes with their resourceVersion, so a concurrent
writer's update is never overwritten blindly: the controller replans on the conflict).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.operator.informer import Key
from graylane.operator.kubeapi import Conflict, KubeAPI, NotFound, api_path

from graylane.gateway.provision import CHECKSUM_ANNOTATION, merge_patch

log = logging.getLogger("graylane.gateway")
PREFIXES = {"Deployment": ("/apis/apps/v1", "deployments"), "Service": ("/api/v1", "services"),
            "ConfigMap": ("/api/v1", "configmaps"), "Secret": ("/api/v1", "secrets")}  # fmt: skip


def _checksum(obj: Mapping[str, Any]) -> Any:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM_ANNOTATION)


async def apply_owned(
    api: KubeAPI, *, kind: str, namespace: str, desired: Iterable[dict[str, Any]], current: Mapping[Key, Any]
) -> int:
    """Make the owned objects of ``kind`` in ``namespace`` exactly ``desired``; returns the writes made."""
    prefix, plural = PREFIXES[kind]
    writes = 0
    wanted = set()
    for body in desired:
        name = body["metadata"]["name"]
        wanted.add(name)
        have = current.get((namespace, name))
        if have is not None and _checksum(have) == _checksum(body):
            continue
        writes += 1
        if have is not None:
            await api.merge_patch(api_path(prefix, plural, namespace, name), patch=merge_patch(have, body))
            continue
        try:
            await api.create(api_path(prefix, plural, namespace), body=body)
        except Conflict:  # there, but not in the store yet
            await api.merge_patch(api_path(prefix, plural, namespace, name), patch=body)
    for (_, name), have in current.items():
        if name not in wanted:
            writes += 1
            uid = (have.get("metadata") or {}).get("uid")
            try:
                await api.delete(api_path(prefix, plural, namespace, name), uid=uid)
            except Conflict:
                continue  # re-created meanwhile by someone else: not ours to delete
    return writes


async def patch_status(
    api: KubeAPI,
    url: str,
    *,
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    version: str | None = None,
) -> bool:
    """Merge-patch ``status`` to ``desired`` when a key differs; True when a write was made."""
    if all(current.get(k) == v for k, v in desired.items()):
        return False
    patch: dict[str, Any] = {"status": dict(desired)}
    if version:
        patch["metadata"] = {"resourceVersion": version}
    try:
        await api.merge_patch(url + "/status", patch=patch)
    except NotFound:
        return False  # deleted meanwhile
    return True
