"""A small async Kubernetes API client for the bench: bulk creates, patches, paginated lists, watches.

It uses the proxy's own kubeconfig reader (client certificate or token, the cluster CA), so the bench talks
to the API exactly as a kube-mode proxy does; ``kubectl`` would spend most of its time starting up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
from graylane.proxy.sources.kubeconfig import load

MERGE = {"Content-Type": "application/merge-patch+json"}
GROUP = "/apis/graylane.io/v1alpha1"


def path_of(obj: dict[str, Any], *, name: bool = False) -> str:
    """The collection path of ``obj`` (or its own path with ``name``)."""
    meta, kind = obj["metadata"], obj["kind"]
    ns = meta["namespace"]
    base = {
        "ConfigMap": f"/api/v1/namespaces/{ns}/configmaps",
        "Upstream": f"{GROUP}/namespaces/{ns}/upstreams",
        "CanaryRoute": f"{GROUP}/namespaces/{ns}/canaryroutes",
    }[kind]
    return f"{base}/{meta['name']}" if name else base


class Api:
    def __init__(self, kubeconfig: Path, *, connections: int = 16) -> None:
        self.access = load(str(kubeconfig))
        self.connections = connections
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        connector = aiohttp.TCPConnector(ssl=self.access.ssl_context, limit=self.connections)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        self.session = aiohttp.ClientSession(connector=connector, read_bufsize=1 << 22, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    def _url(self, path: str) -> str:
        return self.access.server + path

    async def request(
        self, method: str, path: str, body: Any = None, *, merge: bool = False
    ) -> tuple[int, Any]:
        assert self.session is not None
        headers = {**self.access.headers(), **(MERGE if merge else {})}
        data = json.dumps(body) if body is not None else None
        if data is not None and not merge:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self._url(path), data=data, headers=headers) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text.startswith("{") else text

    async def create_all(self, objects: Iterable[dict[str, Any]], *, concurrency: int = 16) -> int:
        """POST every object (``concurrency`` at a time, in order of the iterable); returns how many."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=concurrency * 4)
        created = 0

        async def worker() -> None:
            nonlocal created
            while (obj := await queue.get()) is not None:
                status, body = await self.request("POST", path_of(obj), obj)
                if status not in (200, 201):
                    raise RuntimeError(f"create {obj['kind']} {obj['metadata']['name']}: {status} {body}")
                created += 1

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        for obj in objects:
            await queue.put(obj)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        return created

    async def patch(self, path: str, patch: Any) -> tuple[int, Any]:
        return await self.request("PATCH", path, patch, merge=True)

    async def list(
        self, path: str, *, selector: str = "", page: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection (paginated) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = f"?limit={page}" + (f"&labelSelector={selector}" if selector else "")
            query += f"&continue={token}" if token else ""
            status, body = await self.request("GET", path + query)
            if status != 200:
                raise RuntimeError(f"list {path}: {status} {body}")
            items += body.get("items") or []
            token = body["metadata"].get("continue") or ""
            if not token:
                return items, body["metadata"]["resourceVersion"]

    async def watch(
        self, path: str, version: str, *, selector: str = ""
    ) -> AsyncIterator[tuple[float, int, dict[str, Any]]]:
        """``(arrival time, line bytes, event)`` of a watch from ``version`` (bookmarks skipped)."""
        assert self.session is not None
        query = f"?watch=1&resourceVersion={version}&allowWatchBookmarks=true" + (
            f"&labelSelector={selector}" if selector else ""
        )
        async with self.session.get(self._url(path + query), headers=self.access.headers()) as resp:
            async for line in resp.content:
                if line.strip():
                    event = json.loads(line)
                    if event.get("type") != "BOOKMARK":
                        yield time.monotonic(), len(line), event
