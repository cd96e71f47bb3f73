"""The rollout loop's eyes: find the proxies and scrape their ``/metrics`` concurrently, with short timeouts.

Proxies come from fixed URLs (``--proxy-metrics-url``, for local runs) and, in a cluster, from the
EndpointSlices of the chart's proxy admin Service (``--proxy-service``): every ready endpoint's port named
``admin``. A proxy that cannot be reached, answers non-200 or sends text that does not parse is a failure of
this round (the rollout holds); the others' snapshots are still returned.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from graylane.operator.kubeapi import APIError, KubeAPI

from graylane.rollout import analysis, promtext

ADMIN_PORT_NAME = "admin"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MAX_METRICS_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScrapeRound:
    """One round: each proxy's snapshot by URL, and why the others failed (``discovery`` for the API)."""

    snapshots: Mapping[str, analysis.Snapshot] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every discovered proxy answered, and there was at least one."""
        return bool(self.snapshots) and not self.failures


def endpointslices_path(namespace: str, service: str) -> str:
    selector = quote(f"{SERVICE_NAME_LABEL}={service}", safe="")
    return f"/apis/discovery.k8s.io/v1/namespaces/{quote(namespace)}/endpointslices?labelSelector={selector}"


def endpoint_urls(
    slices: Mapping[str, Any], *, port_name: str = ADMIN_PORT_NAME, port: int | None = None
) -> list[str]:
    """The ``/metrics`` URLs of the ready endpoints in an EndpointSlice list (sorted, no duplicates), on the
    slice's port named ``port_name``, or on ``port`` for every slice (a Service without the admin port)."""
    urls: set[str] = set()
    for item in slices.get("items") or []:
        ports = [p for p in item.get("ports") or [] if p.get("name") == port_name and p.get("port")]
        if not ports and port is None:
            continue
        port_of = port if port is not None else int(ports[0]["port"])
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in (endpoint.get("addresses") or [])[:1]:
                urls.add(f"http://{url_host(address)}:{port_of}/metrics")
    return sorted(urls)


def url_host(address: str) -> str:
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


async def discover(
    api: KubeAPI | None, *, static_urls: Sequence[str], namespace: str, service: str | None
) -> tuple[list[str], str | None]:
    """(metrics URLs, why discovery failed or ``None``): the static URLs plus the Service's endpoints."""
    urls = list(static_urls)
    if service is None or api is None:
        return urls, None
    try:
        slices = await api.get(endpointslices_path(namespace, service))
    except (APIError, OSError, TimeoutError) as exc:
        return urls, f"listing the EndpointSlices of Service {namespace}/{service} failed: {exc!r}"
    return sorted(set(urls) | set(endpoint_urls(slices))), None


async def scrape(session: aiohttp.ClientSession, urls: Sequence[str], *, seconds: float) -> ScrapeRound:
    """Scrape every URL at once; each gets ``seconds`` for connect, answer and body."""
    results = await asyncio.gather(*(_scrape_one(session, url, seconds=seconds) for url in urls))
    snapshots = {
        url: snap for url, snap in zip(urls, results, strict=True) if isinstance(snap, analysis.Snapshot)
    }
    failures = {url: why for url, why in zip(urls, results, strict=True) if isinstance(why, str)}
    return ScrapeRound(snapshots, failures)


async def _scrape_one(session: aiohttp.ClientSession, url: str, *, seconds: float) -> analysis.Snapshot | str:
    try:
        async with asyncio.timeout(seconds):
            async with session.get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    return f"HTTP {resp.status}"
                body = await resp.content.read(MAX_METRICS_BYTES + 1)
        if len(body) > MAX_METRICS_BYTES:
            return f"more than {MAX_METRICS_BYTES} bytes"
        return analysis.parse_snapshot(body.decode("utf-8", errors="replace"))
    except TimeoutError:
        return f"no answer within {seconds:g}s"
    except (aiohttp.ClientError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except promtext.PromTextError as exc:
        return f"unparsable metrics: {exc}"
