"""The few Kubernetes API calls the operator makes besides Kopf's watches.

They go through Kopf's own authenticated client (the same credentials, TLS and retry policy as its watches),
so there is one login and one connection pool. Kopf keeps that client in a private module; this file is the
only place that touches it, pyproject.toml pins the Kopf releases it was tested with, and
tests/operator/test_kopf_private_api.py says what moved when a release breaks it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf
from kopf._cogs.clients import api as kopf_api
from kopf._cogs.clients import errors as kopf_errors

NotFound = kopf_errors.APINotFoundError
Conflict = kopf_errors.APIConflictError
APIError = kopf_errors.APIError
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
GROUP_PATH = "/apis/graylane.io/v1alpha1"


def configmaps_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{quote(namespace)}/configmaps"
    return base if name is None else f"{base}/{quote(name)}"


def secrets_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{quote(namespace)}/secrets"
    return base if name is None else f"{base}/{quote(name)}"


def api_path(prefix: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """Any resource's URL: ``prefix`` is ``/api/v1`` or ``/apis/<group>/<version>``."""
    base = f"{prefix}/namespaces/{quote(namespace)}/{plural}" if namespace else f"{prefix}/{plural}"
    return base if name is None else f"{base}/{quote(name)}"


def custom_path(plural: str, namespace: str | None = None, name: str | None = None) -> str:
    base = f"{GROUP_PATH}/namespaces/{quote(namespace)}/{plural}" if namespace else f"{GROUP_PATH}/{plural}"
    return base if name is None else f"{base}/{quote(name)}"


class KubeAPI:
    """Keyword-only helpers around Kopf's client; each raises Kopf's ``APIError`` subclasses."""

    def __init__(self, *, settings: kopf.OperatorSettings, logger: logging.Logger) -> None:
        self._settings = settings
        self._logger = logger
        self.writes = 0  # creates, patches and deletes sent so far (the route controller logs it when idle)

    async def _call(self, method: str, url: str, *, payload: Any = None, merge: bool = False) -> Any:
        self.writes += method != "get"
        response = await kopf_api.request(
            method,
            url,
            payload=payload,
            headers=MERGE_PATCH if merge else None,
            settings=self._settings,
            logger=self._logger,
        )
        async with response:
            return await response.json()

    async def get(self, url: str) -> Any:
        return await self._call("get", url)

    async def create(self, url: str, *, body: Any) -> Any:
        return await self._call("post", url, payload=body)

    async def merge_patch(self, url: str, *, patch: Any) -> Any:
        return await self._call("patch", url, payload=patch, merge=True)

    async def watch(self, url: str, *, timeout_seconds: int) -> AsyncIterator[Any]:
        """The events of ``url?watch=1&...`` (the caller adds resourceVersion) as they arrive."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        async for event in kopf_api.stream(
            url, settings=self._settings, timeout=timeout, logger=self._logger
        ):
            yield event

    async def delete(self, url: str, *, uid: str | None = None, resource_version: str | None = None) -> None:
        """Delete with preconditions, so an object re-created meanwhile under the same name survives."""
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions}
        try:
            await self._call("delete", url, payload=body)
        except NotFound:
            return
