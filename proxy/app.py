"""Wiring: ``create_app(settings)`` builds the admin application; its cleanup context runs the data plane.

The data plane (client listener, route source, pools) starts when the admin app starts and stops when it is
cleaned up. :func:`serve` runs both until a stop event, then drains: readiness fails at once, the listener
keeps accepting for ``drain_delay`` seconds, then it closes and in-flight requests get ``drain_timeout``
seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from ssl import SSLContext
from typing import Any

from aiohttp import web
from graylane.proxy.admin.pages import CLAIMS, METRICS, SIBLINGS, STATE, create_admin_app, worker_view
from graylane.proxy.admin.workers import Siblings, create_self_app, socket_path
from graylane.proxy.deadlines import Deadlines
from graylane.proxy.metrics import Metrics
from graylane.proxy.mirror.shadow import Mirrors
from graylane.proxy.routing.clientaddr import ClientAddress
from graylane.proxy.routing.handler import ProxyHandler
from graylane.proxy.routing.jwtclaims import ClaimsSource, Verifiers
from graylane.proxy.routing.state import PoolRegistry, RouteState
from graylane.proxy.server.aiohttp_server import GuardedAppRunner, GuardedServer, bound_port
from graylane.proxy.server.protocol import FastServer
from graylane.proxy.settings import Settings
from graylane.proxy.sources.files import DirectorySource
from graylane.proxy.sources.jwks import JwksFetcher
from graylane.proxy.sources.secrets import SecretStore

from graylane.routing import geo

log = logging.getLogger("graylane.proxy")


class DataPlane:
    """The client listener and the route source of one worker."""

    def __init__(
        self,
        settings: Settings,
        state: RouteState,
        claims: ClaimsSource,
        jwks: JwksFetcher,
        deadlines: Deadlines,
    ) -> None:
        self.settings = settings
        self.deadlines = deadlines
        self.jwks = jwks
        self.state = state
        self.claims = claims
        self.port = 0
        self.tls_port = 0
        self._runners: list[tuple[asyncio.Server, web.ServerRunner]] = []  # --server aiohttp
        self._fast: list[FastServer] = []
        self.mirrors = Mirrors(metrics=state.metrics, limit=mirror_share(settings))
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    async def start(self) -> None:
        s = self.settings
        self._start_source()
        tls = self.state.tls
        plain = self._handler(b"http", s.https_redirect_port if tls is not None else None)
        self.port = await self._listen(plain, s.listen_host, s.listen_port, None)
        plain.listener_port = s.listener_port or self.port  # the Gateway listener port this one serves
        log.info("data plane listening on %s:%s (%s server)", s.listen_host, self.port, s.server)
        for host, port, listener_port in s.more_listeners:  # a Gateway's further HTTP ports
            more = self._handler(b"http", s.https_redirect_port if tls is not None else None)
            more.listener_port = listener_port
            bound = await self._listen(more, host, port, None)
            log.info("listening on %s:%s for Gateway listener port %s", host, bound, listener_port)
        if tls is not None and s.tls_host is not None:
            from graylane.proxy.tls.context import listener_context

            context = listener_context(tls.lookup)
            secure = self._handler(b"https", None)
            self.tls_port = await self._listen(secure, s.tls_host, s.tls_port, context)
            secure.listener_port = s.tls_listener_port or self.tls_port
            log.info("HTTPS listening on %s:%s (%s server)", s.tls_host, self.tls_port, s.server)

    def _handler(self, scheme: bytes, https_port: int | None) -> ProxyHandler:
        """One per listener: the same routes and state; the scheme is what X-Forwarded-Proto says."""
        s = self.settings
        return ProxyHandler(
            state=self.state,
            metrics=self.state.metrics,
            addresses=ClientAddress(s.trusted_proxies, scheme=scheme, header=s.client_ip_header),
            claims=self.claims,
            max_body=s.max_body_bytes,
            body_timeout=s.body_timeout,
            mirrors=self.mirrors,
            listener_port=s.listener_port,
            https_port=https_port,
        )

    async def _listen(self, handler: ProxyHandler, host: str, port: int, ssl: SSLContext | None) -> int:
        s = self.settings
        if s.server == "fast":
            fast = FastServer(handler, s, deadlines=self.deadlines)
            self._fast.append(fast)
            port_: int = await fast.start(host, port, reuse_port=s.reuse_port, ssl=ssl)
            return port_
        server = GuardedServer(
            handler,
            header_timeout=s.header_timeout,
            keepalive_timeout=s.idle_timeout,
            max_line_size=s.max_header_line,
            max_field_size=s.max_header_line,
            max_headers=s.max_headers,
            max_head=s.max_head_bytes,
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=s.drain_timeout)
        await runner.setup()
        # the listener itself, not a TCPSite: so that an HTTPS handshake gets the header timeout too
        factory: Any = runner.server  # web.Server makes the protocol of each connection
        listener = await asyncio.get_running_loop().create_server(
            factory, host, port, reuse_port=s.reuse_port or None, backlog=1024, ssl=ssl,
            ssl_handshake_timeout=s.header_timeout if ssl is not None else None,
        )  # fmt: skip
        self._runners.append((listener, runner))
        bound: int = listener.sockets[0].getsockname()[1]
        return bound

    def _start_source(self) -> None:
        s = self.settings
        self._tasks.append(asyncio.create_task(self.state.updates.run(), name="graylane-route-updates"))
        if s.config_dir is not None:
            source = DirectorySource(directory=s.config_dir, state=self.state, interval=s.poll_interval)
            source.scan()  # the first table is there before the listener opens
            self._tasks.append(asyncio.create_task(source.run(), name="graylane-file-source"))
        if s.kube:
            from graylane.proxy.sources.kube import KubeSource

            kube = KubeSource.from_settings(s, state=self.state)
            self._tasks.append(asyncio.create_task(kube.run(), name="graylane-kube-source"))

    async def stop(self) -> None:
        """Drain: readiness already fails; wait the delay, close the listener, let in-flight finish."""
        if self._stopped:
            return
        self._stopped = True
        self.state.draining = True
        for fast in self._fast:
            fast.drain()
        if self.settings.drain_delay > 0:
            await asyncio.sleep(self.settings.drain_delay)
        for listener, _ in self._runners:
            listener.close()
        await asyncio.gather(*(runner.cleanup() for _, runner in self._runners))
        grace = self.settings.drain_timeout
        await asyncio.gather(*(fast.shutdown(grace) for fast in self._fast))
        self.mirrors.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state.pools.close()
        self.deadlines.close()
        await self.jwks.close()


DATA_PLANE = web.AppKey("data_plane", DataPlane)


def mirror_share(settings: Settings) -> int:
    """This worker's part of ``--mirror-max-in-flight``: the workers' parts add up to the pod's bound."""
    index: int = settings.worker_index
    workers: int = max(settings.workers, index + 1)
    bound: int = settings.mirror_max_in_flight
    return bound // workers + (1 if index < bound % workers else 0)


def _version() -> str:
    try:
        return importlib.metadata.version("graylane")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings) -> web.Application:
    """The admin application; starting it starts the data plane (``app[DATA_PLANE]``)."""
    metrics = Metrics({"server": settings.server, "version": _version()})
    deadlines = Deadlines()
    jwks = JwksFetcher(min_interval=settings.jwks_min_interval)
    tls = None
    if settings.tls_host is not None:
        secrets = SecretStore(settings.secrets_dir, allow_empty=True)
        from graylane.proxy.tls.certs import CertStore  # cryptography only with an HTTPS listener

        tls = CertStore(secrets=secrets, metrics=metrics, default_secret=settings.default_tls_secret,
                        listener_port=settings.tls_listener_port)  # fmt: skip
    state = RouteState(
        countries=_countries(settings),
        underscore_headers=settings.allow_underscore_headers,
        metrics=metrics,
        pools=PoolRegistry(connect_timeout=settings.connect_timeout, deadlines=deadlines),
        verifiers=Verifiers(metrics=metrics, jwks=jwks, secrets=SecretStore(settings.secrets_dir)),
        tls=tls,
    )
    if settings.gc_tuning:
        state.on_synced = _settle_first_table
    claims = ClaimsSource()
    app: web.Application = create_admin_app(state=state, metrics_=metrics, claims=claims)
    app[DATA_PLANE] = DataPlane(settings, state, claims, jwks, deadlines)
    if settings.worker_dir is not None:
        count = max(settings.workers, settings.worker_index + 1)
        app[SIBLINGS] = Siblings(settings.worker_dir, index=settings.worker_index, count=count)
        app.cleanup_ctx.append(_worker_socket)

    async def data_plane(app: web.Application) -> AsyncIterator[None]:
        await app[DATA_PLANE].start()
        yield
        await app[DATA_PLANE].stop()

    app.cleanup_ctx.append(data_plane)
    return app


async def serve(settings: Settings, *, stop: asyncio.Event) -> None:
    """Run admin + data plane until ``stop`` is set, then drain and return."""
    app = create_app(settings)
    runner = GuardedAppRunner(
        app, header_timeout=settings.header_timeout, max_head=settings.max_head_bytes,
        max_line_size=settings.max_header_line, max_field_size=settings.max_header_line,
        max_headers=settings.max_headers,
    )  # fmt: skip
    await runner.setup()
    try:
        site = web.TCPSite(
            runner, settings.admin_host, settings.admin_port, reuse_port=settings.reuse_port or None
        )
        await site.start()
        log.info(
            "graylane proxy started: listen=%s:%s tls=%s admin=%s:%s source=%s trusted=%s",
            settings.listen_host, app[DATA_PLANE].port,
            f"{settings.tls_host}:{app[DATA_PLANE].tls_port}" if settings.tls_host else "-",
            settings.admin_host, bound_port(site),
            "kube" if settings.kube else settings.config_dir, ",".join(settings.trusted_proxies) or "-",
        )  # fmt: skip
        if settings.gc_tuning:
            _freeze_startup_heap()
        await stop.wait()
        log.info("draining")
        await app[DATA_PLANE].stop()
    finally:
        await runner.cleanup()


async def _worker_socket(app: web.Application) -> AsyncIterator[None]:
    """This worker's private Unix socket, where its siblings ask for its readiness and metrics."""
    siblings = app[SIBLINGS]
    runner = web.AppRunner(create_self_app(lambda: worker_view(app)), handle_signals=False, access_log=None)
    await runner.setup()
    path = socket_path(siblings.directory, siblings.index)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a leftover of a crashed worker with the same index
    await web.UnixSite(runner, str(path)).start()
    yield
    await siblings.close()
    await runner.cleanup()


def _freeze_startup_heap() -> None:
    """Move everything alive after startup (modules, the first route table) out of the collector's reach.

    Per-request garbage is freed by reference counting; what the cyclic collector would otherwise rescan
    on every full collection is this startup heap, a pause of milliseconds that lands in the latency tail.
    It runs again once the first route table is complete (a kube list ends after ``serve`` starts), and
    then hands the memory the load freed (parsed documents, list pages) back to the system.
    """
    gc.collect()
    gc.freeze()


def _settle_first_table() -> None:
    _freeze_startup_heap()
    with contextlib.suppress(OSError, AttributeError):  # glibc only (musl has no malloc_trim)
        ctypes.CDLL(None).malloc_trim(0)


def _countries(settings: Settings) -> geo.CountryResolver:
    if settings.geoip_db is not None:
        from graylane.proxy.sources import geofile  # maxminddb only with --geoip-db

        lookup: geo.CountryLookup = geofile.open_mmdb(settings.geoip_db)
    else:
        lookup = geo.IptoccLookup()
    return geo.CountryResolver(lookup, header=settings.country_header)


__all__ = ["CLAIMS", "DATA_PLANE", "METRICS", "STATE", "DataPlane", "create_app", "serve"]
