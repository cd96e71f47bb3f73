"""The floor for any proxy built on aiohttp's server: ``web.Server`` on uvloop answering a fixed 13-byte body
(no upstream, no routing). ``proxy_bench.py`` measures it beside the proxies so graylane's own cost shows as
the gap between this and graylane. With a second argument (milliseconds) every answer is delayed that long:
the slow canary of the mirror scenario."""

from __future__ import annotations

import asyncio
import sys

import uvloop
from aiohttp import web


async def _main(port: int, delay: float) -> None:
    async def handler(request: web.BaseRequest) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        return web.Response(text="hello, world\n")

    runner = web.ServerRunner(web.Server(handler, access_log=None), handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(_main(int(sys.argv[1]), float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0))
