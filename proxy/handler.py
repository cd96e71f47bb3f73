"""The data-plane request handler: decide, forward, account.

Per request: read the table once (a swap mid-request does not affect it), resolve the client IP, build the
core's request view, ``decide``, send through the chosen upstream's pool (retrying once on stable when the
canary refused or reset before answering), and record ``graylane_requests_total``,
``graylane_request_duration_seconds``, ``graylane_decisions_total`` and ``graylane_upstream_errors_total``.
"""

from __future__ import annotations

import asyncio
import random
from typing import TypeAlias

from aiohttp import web
from graylane.proxy import forward
from graylane.proxy.claims import ClaimsSource
from graylane.proxy.clientaddr import ClientAddress
from graylane.proxy.fastrequest import ClientRequest, Streamed
from graylane.proxy.metrics import Metrics
from graylane.proxy.routestate import RoutePlan, RouteState
from graylane.proxy.server import plain_error
from graylane.proxy.upstream import UpstreamConnection, UpstreamError

from graylane import decide as core_decide
from graylane.request import RequestView, normalize_host

_ERROR_STATUS = {"overflow": 503, "timeout": 504, "connect": 502, "reset": 502, "protocol": 502}
_NO_ROUTE = "-"
_CODE = {code: str(code) for code in range(100, 600)}
Answer: TypeAlias = web.StreamResponse | forward.RawResponse | Streamed


class ProxyHandler:
    def __init__(
        self,
        *,
        state: RouteState,
        metrics: Metrics,
        addresses: ClientAddress,
        claims: ClaimsSource,
        max_body: int,
        body_timeout: float,
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._addresses = addresses
        self._claims = claims
        self._max_body = max_body
        self._body_timeout = body_timeout
        self._loop = asyncio.get_running_loop()
        self._random = random.random
        self._hosts: dict[str | None, str] = {}

    async def __call__(self, request: ClientRequest) -> Answer:
        start = self._loop.time()
        table = self._state.table
        if table is None:
            return self._answer(plain_error(503), _NO_ROUTE, _NO_ROUTE, start)
        fwd = self._addresses.forwarding(request)
        headers = request.headers
        host = self._host(headers.get("host"))
        path = request.path
        route = table.core.lookup(host, path)
        if route is None:
            return self._answer(plain_error(404), _NO_ROUTE, _NO_ROUTE, start)
        plan: RoutePlan = table.plans[route.key]
        view = RequestView(
            method=request.method,
            host=host,
            path=path,
            query_string=request.query_string,
            headers=headers,
            client_ip=fwd.client,
            claims=self._claims.lazy(plan.verifier, headers),
            trusted_peer=fwd.trusted_peer,
        )
        decision = core_decide.decide_route(route, view, self._random())
        label = plan.label
        track: str = decision.track
        self._metrics.decision(label, track, decision.reason)
        if request.body_exists:
            prepared = await forward.prepare(
                request, fwd=fwd, max_body=self._max_body, body_timeout=self._body_timeout
            )
        else:
            prepared = forward.bodiless(request, fwd=fwd, max_body=self._max_body)
        if isinstance(prepared, int):
            resp = plain_error(prepared)
            resp.force_close()
            return self._answer(resp, label, track, start)
        try:
            return await self._forward(request, prepared, plan, track, decision.upstream, start)
        except (asyncio.CancelledError, ConnectionError):  # the client went away
            self._metrics.request_done(label, track, "499", self._loop.time() - start)
            raise

    def _host(self, raw_host: str | None) -> str:
        host = self._hosts.get(raw_host)
        if host is None:
            host = normalize_host(raw_host)
            if len(self._hosts) < 4096:  # bounded: Host is client-controlled
                self._hosts[raw_host] = host
        return host

    async def _forward(
        self,
        request: ClientRequest,
        prepared: forward.Outgoing,
        plan: RoutePlan,
        track: str,
        upstream: str,
        start: float,
    ) -> Answer:
        label = plan.label
        try:
            conn = await forward.send(request, prepared, plan.targets[(upstream, track)])
        except (forward.BodyTooLarge, forward.BadRequestBody) as exc:
            refused = plain_error(413 if isinstance(exc, forward.BodyTooLarge) else 400)
            refused.force_close()
            return self._answer(refused, label, track, start)
        except UpstreamError as exc:
            self._metrics.upstream_error(label, track, exc.reason)
            if not (track == "canary" and exc.reason in ("connect", "reset") and exc.before_response
                    and prepared.replayable):  # fmt: skip
                return self._answer(plain_error(_ERROR_STATUS[exc.reason]), label, track, start)
            track, upstream = "stable", plan.config.stable
            fallback = await self._fallback(request, prepared, plan, start)
            if not isinstance(fallback, UpstreamConnection):
                return fallback
            conn = fallback
        target = plan.targets[(upstream, track)]
        if conn.complete:  # the usual case: the whole response arrived with its head
            resp: Answer = forward.whole(request, conn, target.pool)
        else:
            streamed: tuple[web.StreamResponse | Streamed, bool] = await forward.stream(request, conn, target)
            resp, complete = streamed
            if not complete:
                self._metrics.upstream_error(label, track, conn.error.reason if conn.error else "reset")
        self._metrics.request_done(
            label, track, _CODE.get(resp.status) or str(resp.status), self._loop.time() - start
        )
        return resp

    async def _fallback(
        self, request: ClientRequest, prepared: forward.Outgoing, plan: RoutePlan, start: float
    ) -> UpstreamConnection | Answer:
        """The canary refused or reset before answering: once more, on stable."""
        label, stable = plan.label, plan.config.stable
        self._metrics.decision(label, "stable", "fallback")
        try:
            return await forward.send(request, prepared, plan.targets[(stable, "stable")])
        except UpstreamError as again:
            self._metrics.upstream_error(label, "stable", again.reason)
            return self._answer(plain_error(_ERROR_STATUS[again.reason]), label, "stable", start)

    def _answer(self, resp: Answer, label: str, track: str, start: float) -> Answer:
        self._metrics.request_done(label, track, str(resp.status), self._loop.time() - start)
        return resp
