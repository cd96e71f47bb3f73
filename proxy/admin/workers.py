"""Pod-wide admin answers with ``--workers N``: each worker's figures, gathered and merged at scrape time.

Every worker binds the shared admin port (``SO_REUSEPORT``), so a scrape lands on any one of them. Without
merging, ``/metrics`` would describe one worker, and consecutive scrapes that land on different workers
would show counters going backwards (Prometheus reads that as a reset; the operator's analysis would see
wrong rates). So each worker also serves its own figures on a private Unix socket, ``DIR/worker-I.sock``
(``DIR`` is a 0700 directory made by the supervisor), and the worker that answers ``/metrics`` or
``/readyz`` asks its siblings and merges:

* counters and histograms: summed;
* ``graylane_config_generation``: per route the lowest generation, for routes every worker serves (what the
  whole pod is guaranteed to serve);
* ``graylane_ready`` and ``graylane_control_plane_connected``: the lowest (the pod is ready when every
  worker is, since the kernel hands connections to all of them);
* ``graylane_tls_certificate_expiry_seconds``: per Secret the earliest expiry any worker serves.

A sibling that does not answer within ``SIBLING_TIMEOUT`` makes ``/metrics`` and ``/readyz`` answer 503:
a failed scrape is honest, a partial sum is not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from graylane.proxy.metrics import Histogram, Metrics

SIBLING_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What one worker reports about itself."""

    index: int
    ready: bool
    why: str
    metrics: dict[str, Any]


class SiblingUnavailable(Exception):
    """A sibling worker did not answer (starting, stopped, or stuck)."""


def socket_path(directory: Path, index: int) -> Path:
    return directory / f"worker-{index}.sock"


def snapshot(m: Metrics) -> dict[str, Any]:
    """One worker's metrics as JSON-able data (the inverse of ``merged``'s input)."""
    return {
        "requests": [[*k, v] for k, v in m.requests.items()],
        "decisions": [[*k, v] for k, v in m.decisions.items()],
        "upstream_errors": [[*k, v] for k, v in m.upstream_errors.items()],
        "mirror": [[*k, v] for k, v in m.mirror.items()],
        "config_rejected": [[k, v] for k, v in m.config_rejected.items()],
        "jwt_rejected": [[k, v] for k, v in m.jwt_rejected.items()],
        "tls_rejected": [[k, v] for k, v in m.tls_rejected.items()],
        "tls_expiry": [[k, v] for k, v in m.tls_expiry.items()],
        "generation": [[k, v] for k, v in m.generation.items()],
        "durations": [[route, track, list(h.counts), h.sum] for (route, track), h in m.durations.items()],
        "reloads": m.reloads,
        "coalesced": m.coalesced,
        "ready": m.ready,
        "control_plane_connected": m.control_plane_connected,
        "info": m.info,
    }


def merged(snapshots: Sequence[Mapping[str, Any]]) -> Metrics:
    """The pod's metrics from every worker's snapshot (rules in the module docstring)."""
    out = Metrics(snapshots[0]["info"] if snapshots else None)  # every worker runs the same command
    for snap in snapshots:
        _sum_into(out.requests, snap["requests"])
        _sum_into(out.decisions, snap["decisions"])
        _sum_into(out.upstream_errors, snap["upstream_errors"])
        _sum_into(out.mirror, snap["mirror"])
        _sum_into(out.config_rejected, snap["config_rejected"])
        _sum_into(out.jwt_rejected, snap["jwt_rejected"])
        _sum_into(out.tls_rejected, snap["tls_rejected"])
        for secret, after in snap["tls_expiry"]:  # every worker serves the same: the earliest wins
            out.tls_expiry[secret] = min(after, out.tls_expiry.get(secret, after))
        for route, track, counts, total in snap["durations"]:
            hist = out.durations.setdefault((route, track), Histogram())
            hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
            hist.sum += total
        out.reloads += snap["reloads"]
        out.coalesced += snap.get("coalesced", 0)
    gens = [dict((k, v) for k, v in snap["generation"]) for snap in snapshots]
    common = set(gens[0]).intersection(*gens[1:]) if gens else set()
    out.generation = {route: min(g[route] for g in gens) for route in common}
    out.ready = min((snap["ready"] for snap in snapshots), default=0)
    connected = [s["control_plane_connected"] for s in snapshots if s["control_plane_connected"] is not None]
    out.control_plane_connected = min(connected) if connected else None
    return out


def _sum_into(target: dict[Any, int], rows: list[list[Any]]) -> None:
    for row in rows:
        key = tuple(row[:-1]) if len(row) > 2 else row[0]
        target[key] = target.get(key, 0) + row[-1]


class Siblings:
    """The other workers of this pod, asked over their Unix sockets."""

    def __init__(self, directory: Path, *, index: int, count: int) -> None:
        self.directory, self.index, self.count = directory, index, count
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    async def views(self) -> list[WorkerView]:
        """Every sibling's view, in index order; raises ``SiblingUnavailable`` if one does not answer."""
        others = [i for i in range(self.count) if i != self.index]
        return list(await asyncio.gather(*(self._view(i) for i in others)))

    async def _view(self, index: int) -> WorkerView:
        session = self._sessions.get(index)
        if session is None:
            connector = aiohttp.UnixConnector(path=str(socket_path(self.directory, index)))
            session = self._sessions[index] = aiohttp.ClientSession(connector=connector)
        try:
            timeout = aiohttp.ClientTimeout(total=SIBLING_TIMEOUT)
            async with session.get("http://worker/self", timeout=timeout) as resp:
                body = json.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SiblingUnavailable(f"worker {index} did not answer ({type(exc).__name__})") from None
        return WorkerView(index, bool(body["ready"]), str(body["why"]), body["metrics"])

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def create_self_app(view: Callable[[], WorkerView]) -> web.Application:
    """The private app on this worker's Unix socket: ``GET /self`` answers ``view()`` (a ``WorkerView``)."""

    async def self_view(request: web.Request) -> web.Response:
        mine = view()
        return web.json_response({"ready": mine.ready, "why": mine.why, "metrics": mine.metrics})

    app = web.Application()
    app.router.add_get("/self", self_view)
    return app


__all__ = [
    "SIBLING_TIMEOUT",
    "SiblingUnavailable",
    "Siblings",
    "WorkerView",
    "create_self_app",
    "merged",
    "snapshot",
    "socket_path",
]
