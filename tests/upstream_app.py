"""A programmable test upstream: a version name, an error rate and a delay that can be changed live.

Every path answers ``200 <name>\\n`` (``X-Upstream-Version: <name>``), except:

- ``GET /__control`` → the current knobs as JSON; ``POST /__control`` with any of
  ``{"errorRate": 0.5, "delayMs": 200, "errorStatus": 503}`` changes them (unknown keys or bad values: 400);
- ``/echo`` → ``{"version", "method", "path", "query", "headers"}`` as JSON (the request as seen here);
- ``GET /ws`` with a WebSocket upgrade → a WebSocket that answers each text message ``<name>: <message>``.

With ``errorRate`` r, a fraction r of requests (drawn from a seeded ``random.Random``) answers ``errorStatus``
(default 500); ``delayMs`` delays every answer but ``/__control``. Counters of answers by status are in
``GET /__control`` as ``served``.

In-process: ``create_app(UpstreamSettings(name="v2"))`` with aiohttp's test server or ``web.AppRunner``.
As a process: ``python tests/upstream_app.py --name v2 --port 9002 [--error-rate 0.5] [--delay-ms 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class UpstreamSettings:
    name: str
    error_rate: float = 0.0
    delay_ms: float = 0.0
    error_status: int = 500
    seed: int = 0
    served: dict[str, int] = field(default_factory=dict)

    def knobs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "errorRate": self.error_rate,
            "delayMs": self.delay_ms,
            "errorStatus": self.error_status,
            "served": dict(self.served),
        }

    def update(self, changes: Any) -> None:
        """Apply a ``POST /__control`` body; ``ValueError`` names the bad key (and nothing changes)."""
        if not isinstance(changes, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(changes) - {"errorRate", "delayMs", "errorStatus"}
        if unknown:
            raise ValueError(f"unknown keys: {sorted(unknown)}")
        rate = _number(changes.get("errorRate", self.error_rate), "errorRate", 0.0, 1.0)
        delay = _number(changes.get("delayMs", self.delay_ms), "delayMs", 0.0, 600_000.0)
        status = changes.get("errorStatus", self.error_status)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("errorStatus must be an integer status code 400-599")
        self.error_rate, self.delay_ms, self.error_status = rate, delay, status


SETTINGS = web.AppKey("settings", UpstreamSettings)
RNG = web.AppKey("rng", random.Random)


def _number(value: Any, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number")
    if not lo <= value <= hi:
        raise ValueError(f"{key} must be between {lo:g} and {hi:g}")
    return float(value)


async def control(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.method == "POST":
        try:
            settings.update(await request.json())
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(settings.knobs())


async def answer(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if settings.delay_ms:
        await asyncio.sleep(settings.delay_ms / 1000)
    await request.read()
    failing = settings.error_rate > 0 and request.app[RNG].random() < settings.error_rate
    status = settings.error_status if failing else 200
    settings.served[str(status)] = settings.served.get(str(status), 0) + 1
    headers = {"X-Upstream-Version": settings.name}
    if request.path == "/echo" and not failing:
        body = {
            "version": settings.name,
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": {k: v for k, v in request.headers.items()},
        }
        return web.json_response(body, headers=headers)
    return web.Response(status=status, text=f"{settings.name}\n", headers=headers)


async def websocket(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return await answer(request)
    name = request.app[SETTINGS].name
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == web.WSMsgType.TEXT:
            await ws.send_str(f"{name}: {message.data}")
    return ws


def create_app(settings: UpstreamSettings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[RNG] = random.Random(settings.seed)
    app.router.add_route("GET", "/__control", control)
    app.router.add_route("POST", "/__control", control)
    app.router.add_route("GET", "/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = UpstreamSettings(name=args.name, seed=args.seed)
    settings.update({"errorRate": args.error_rate, "delayMs": args.delay_ms})
    print(json.dumps({"listening": f"http://{args.host}:{args.port}", **settings.knobs()}), flush=True)
    web.run_app(create_app(settings), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
