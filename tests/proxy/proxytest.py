"""Helpers for the proxy tests: route documents, real upstreams on loopback, the proxy in-process or as the
real ``graylane-proxy`` process, and raw sockets."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from cluster.ports import free_port
from graylane.proxy.app import DATA_PLANE, STATE, create_app
from graylane.proxy.settings import Settings
from waiting import eventually_async

from graylane.config.document import canonical_json, seal

REPO = Path(__file__).resolve().parents[2]
SERVERS = ("fast", "aiohttp")
PROXY_BIN = Path(sys.executable).parent / "graylane-proxy"


def route_doc(
    stable: str,
    canary: str,
    *,
    namespace: str = "shop",
    name: str = "checkout",
    generation: int = 1,
    timeout: float = 5,
    max_connections: int = 64,
    extra_upstreams: dict[str, dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A sealed route document routing to upstream URLs ``stable`` (v1) and ``canary`` (v2)."""
    upstreams = {
        "v1": {"url": stable, "metadata": {"version": "v1"}, "timeoutSeconds": timeout,
               "maxConnections": max_connections},
        "v2": {"url": canary, "metadata": {"version": "v2"}, "timeoutSeconds": timeout,
               "maxConnections": max_connections},
    }  # fmt: skip
    upstreams.update(extra_upstreams or {})
    doc: dict[str, Any] = {
        "schemaVersion": 1,
        "route": {"namespace": namespace, "name": name, "uid": f"uid-{namespace}-{name}",
                  "generation": generation},
        "hosts": [], "pathPrefix": "/", "stable": "v1", "canary": "v2", "upstreams": upstreams,
        "rules": [], "versionRouting": None, "weight": 0, "salt": f"{namespace}/{name}", "sticky": None,
        "jwt": None, "requestHeaders": {},
    }  # fmt: skip
    doc.update(fields)
    return seal(doc)


def rule(name: str, to: str, **match: Any) -> dict[str, Any]:
    """One entry of a route document's ``rules``."""
    return {"name": name, "to": to, "match": match}


def dump(doc: dict[str, Any]) -> str:
    return canonical_json(doc)


# -- upstreams ------------------------------------------------------------------------------------------


SEEN = web.AppKey("seen", list[dict[str, Any]])
WS_ENDED = web.AppKey("ws_ended", list[dict[str, Any]])  # WebSockets whose upstream side has ended


def echo_app(name: str) -> web.Application:
    """An upstream that says who it is and what it received, plus a few special paths."""
    seen: list[dict[str, Any]] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        info = {
            "svc": name, "method": request.method, "path": request.path_qs,
            "headers": [[k, v] for k, v in request.headers.items()],
            "len": len(body), "sha": hashlib.sha256(body).hexdigest(),
        }  # fmt: skip
        seen.append(info)
        special = SPECIAL.get(request.path)
        if special is not None:
            return await special(request, info)
        return web.json_response(info, headers={"X-Upstream": name})

    app = web.Application(client_max_size=1 << 30)
    app[SEEN] = seen
    app[WS_ENDED] = []
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def _sleep(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.json_response(info)


async def _cookie(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    resp = web.json_response(info)
    resp.set_cookie("session", "user-a-secret")
    return resp


async def _redirect(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")


async def _gzip(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    return web.Response(body=gzip.compress(b"zipped " * 100, mtime=0),
                        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})  # fmt: skip


async def _hop(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    headers = {"Connection": "X-Up-Secret", "X-Up-Secret": "1", "Keep-Alive": "timeout=5",
               "Proxy-Authenticate": "Basic", "Trailer": "X-T", "Upgrade": "h2c",
               "X-Kept": "yes"}  # fmt: skip
    return web.Response(text="hop", headers=headers)


async def _big(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    size = int(request.query.get("n", "1000000"))
    resp = web.StreamResponse()
    if request.query.get("chunked"):
        resp.enable_chunked_encoding()
    else:
        resp.content_length = size
    await resp.prepare(request)
    block = bytes(range(256)) * 256
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        await resp.write(piece)
        sent += len(piece)
    await resp.write_eof()
    return resp


async def _status(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    return web.json_response(info, status=int(request.query.get("code", "200")))


async def _ws(request: web.Request, info: dict[str, Any]) -> web.StreamResponse:
    """A WebSocket: first who it is and what it saw, then echo; ``close-me`` closes it from this side."""
    if request.query.get("refuse"):
        return web.json_response(info, status=int(request.query["refuse"]))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json(info)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT and msg.data == "close-me":
            await ws.close(code=4000, message=b"bye")
        elif msg.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    request.app[WS_ENDED].append(info)
    return ws


SPECIAL: dict[str, Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]] = {
    "/sleep": _sleep, "/cookie": _cookie, "/redirect": _redirect, "/gzip": _gzip, "/hop": _hop,
    "/big": _big, "/status": _status, "/ws": _ws,
}  # fmt: skip


@dataclass
class Upstream:
    name: str
    url: str
    runner: web.AppRunner
    app: web.Application

    @property
    def seen(self) -> list[dict[str, Any]]:
        return self.app[SEEN]

    @property
    def ws_ended(self) -> list[dict[str, Any]]:
        return self.app[WS_ENDED]


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port: its runner (clean it up) and its URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def start_upstream(name: str) -> Upstream:
    app = echo_app(name)
    runner, url = await serve_app(app)
    return Upstream(name, url, runner, app)


# -- the proxy in-process --------------------------------------------------------------------------------


@dataclass
class LocalProxy:
    conf_dir: Path | None
    app: web.Application
    server: TestServer
    admin_port: int
    session: aiohttp.ClientSession
    files: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.app[DATA_PLANE].port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    async def close(self) -> None:
        await self.session.close()
        await self.server.close()  # stops the admin app, whose cleanup context drains the data plane

    async def put(self, doc: dict[str, Any], filename: str = "route.json") -> None:
        """Write a document and wait until the served table has it."""
        assert self.conf_dir is not None
        write_atomic(self.conf_dir / filename, dump(doc))
        await eventually_async(
            lambda: self._serving(doc["checksum"]), what=f"checksum {doc['checksum']}", within=10
        )

    def _serving(self, checksum: str) -> bool:
        table = self.app[STATE].table
        return table is not None and any(p.config.checksum == checksum for p in table.plans.values())


async def start_local_proxy(conf_dir: Path | None, *, server: str, **settings: Any) -> LocalProxy:
    """The proxy in this process, on the data-plane ``server`` under test (the ``server_kind`` fixture)."""
    s = Settings(listen_host="127.0.0.1", listen_port=0, admin_host="127.0.0.1", admin_port=0,
                 config_dir=conf_dir, poll_interval=0.05, server=server, **settings)  # fmt: skip
    app = create_app(s)
    server = TestServer(app, host="127.0.0.1")  # runs the admin app; binds port 0 itself, so no race
    await server.start_server()
    assert server.port is not None
    session = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    return LocalProxy(conf_dir, app, server, server.port, session)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- the real process -----------------------------------------------------------------------------------


@dataclass
class ProxyProcess:
    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    conf_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawn_proxy(
    conf_dir: Path,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
    bare: bool = False,
    server: str | None = None,
) -> ProxyProcess:
    """The real command on ``server``; ``bare``: only the addresses, every other flag at its default."""
    port, admin = free_port(), free_port()
    cmd = [str(PROXY_BIN), "--config-dir", str(conf_dir), "--listen", f"127.0.0.1:{port}",
           "--admin-listen", f"127.0.0.1:{admin}"]  # fmt: skip
    if not bare:
        assert server is not None, "the server under test: pass server=server_kind"
        cmd += ["--trusted-proxy", "10.99.0.0/16", "--server", server]
    cmd += extra or []
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    pp = ProxyProcess(proc, port, admin, conf_dir, log)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"graylane-proxy exited {proc.returncode}:\n{pp.output()}")
        try:
            with socket.create_connection(("127.0.0.1", admin), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"graylane-proxy did not start:\n{pp.output()}") from None
            time.sleep(0.05)
    return pp


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        return json.loads(await resp.read())


# -- raw sockets ---------------------------------------------------------------------------------------


async def raw_exchange(
    port: int, data: bytes | list[bytes], *, within: float = 5.0, must_close: bool = False
) -> bytes:
    """Send bytes (a list: separate writes) and read until the server closes or ``within`` passes;
    ``must_close``: the server not closing within that time fails the test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in data if isinstance(data, list) else [data]:
            writer.write(piece)
            await writer.drain()
        out = b""
        try:
            async with asyncio.timeout(within):
                while chunk := await reader.read(65536):
                    out += chunk
        except TimeoutError:
            assert not must_close, f"the proxy did not close the connection; it sent {out[:200]!r}"
        return out
    finally:
        writer.close()


def status_codes(raw: bytes) -> list[int]:
    """Status codes of every HTTP response found in ``raw`` (the tests' upstreams answer with bodies that
    never contain a status line)."""
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def gateway_doc(
    upstreams: dict[str, str],
    *rules: dict[str, Any],
    name: str = "web",
    listeners: list[dict[str, Any]] | None = None,
    generation: int = 1,
    **top: Any,
) -> dict[str, Any]:
    """A sealed schema-2 document of an HTTPRoute (``httpRules``) whose upstreams are ``name -> URL``;
    ``top`` adds top-level keys (a TrafficPolicy's ``jwt``)."""
    doc = {
        "schemaVersion": 2,
        "route": {"namespace": "infra", "name": name, "uid": f"uid-{name}", "generation": generation,
                  "kind": "HTTPRoute", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "hosts": [], "listeners": listeners if listeners is not None else [{"port": 80, "hosts": []}],
        "preserveHost": True, "upstreams": {k: {"url": v, "timeoutSeconds": 5} for k, v in upstreams.items()},
        "httpRules": list(rules), "salt": f"infra/{name}", **top,
    }  # fmt: skip
    return seal(doc)


def http_rule(
    *matches: dict[str, Any], backends: list[tuple[str | None, int]] | None = None, **extra: Any
) -> dict[str, Any]:
    """One ``httpRules`` entry: matches default to ``PathPrefix /``, backends to ``v1`` weight 1."""
    return {
        "matches": list(matches) or [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backends": [
            {"upstream": u, "weight": w} for u, w in (backends if backends is not None else [("v1", 1)])
        ],
        **extra,
    }
