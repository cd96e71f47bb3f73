"""The data-plane request handler: decide, forward, account.

Per request: read the table once (a swap mid-request does not affect it), resolve the client IP, build the
core's request view, ``decide``, send through the chosen upstream's pool (retrying once on stable when the
canary refused or reset before answering), and record ``graylane_requests_total``,
``graylane_request_duration_seconds``, ``graylane_decisions_total`` and ``graylane_upstream_errors_total``.

Two ways through it. ``await handler(request)`` is the coroutine path (aiohttp's server, request bodies,
new upstream connections, streamed responses, retries). :meth:`ProxyHandler.dispatch` is the fast server's
entry: a request without a body that finds an idle upstream connection becomes an :class:`Exchange` driven
by protocol callbacks alone (no task, no future, no timer of its own); whatever it cannot finish that way
(an error to retry, a response to stream) continues on the coroutine path.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable
from typing import Protocol, TypeAlias
from urllib.parse import quote

from aiohttp import web
from graylane.proxy.answers import ErrorAnswer, error_bytes, redirect_bytes
from graylane.proxy.metrics import Metrics
from graylane.proxy.mirror.group import MirrorGroup
from graylane.proxy.mirror.shadow import Mirrors, Shadow
from graylane.proxy.request import ClientRequest, FastRequest, Streamed
from graylane.proxy.routing.clientaddr import ClientAddress
from graylane.proxy.routing.jwtclaims import ClaimsSource
from graylane.proxy.routing.own import own_answer
from graylane.proxy.routing.rewrite import rewritten
from graylane.proxy.routing.state import RoutePlan, RouteState
from graylane.proxy.target import ClientTarget, check_target
from graylane.proxy.upstream import forward
from graylane.proxy.upstream.client import ERROR_STATUS, UpstreamConnection, UpstreamError, canary_falls_back
from graylane.proxy.upstream.headers import Forwarding
from graylane.proxy.websocket.tunnel import Tunnel
from graylane.proxy.websocket.upgrade import open_tunnel

from graylane.routing import decide as core_decide
from graylane.routing.request import RequestView, normalize_host

_NO_ROUTE = "-"
_URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"
_DNS_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")  # what a 308 may name as the new host
_CODE = {code: str(code) for code in range(100, 600)}
Answer: TypeAlias = web.StreamResponse | forward.RawResponse | Streamed | ErrorAnswer


class Routed:
    """A decided request: its route's plan, the track and upstream, the client address facts, the
    normalised target when it is not sent on as it came (``target.py``), and its shadow when mirrored."""

    __slots__ = ("fwd", "plan", "shadow", "start", "track", "upstream", "where")

    def __init__(
        self, plan: RoutePlan, track: str, upstream: str, fwd: Forwarding, start: float,
        where: ClientTarget | None, shadow: Shadow | MirrorGroup | None = None,
    ) -> None:  # fmt: skip
        self.plan = plan
        self.track = track
        self.upstream = upstream
        self.fwd = fwd
        self.start = start
        self.where = where
        self.shadow = shadow


class ExchangeOwner(Protocol):
    """The client connection of an :class:`Exchange` (``server.connection.Connection``)."""

    exchange: Exchange | None
    tunnel: Tunnel | None  # a WebSocket upgrade's (see upgrade.py)
    deadline: float

    def exchange_done(self, request: FastRequest, answer: Answer) -> None: ...

    def exchange_continues(self, request: FastRequest, rest: Awaitable[Answer]) -> None: ...


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
        mirrors: Mirrors,
        listener_port: int | None = None,
        https_port: int | None = None,
    ) -> None:
        self._state = state
        self._mirrors = mirrors
        self.listener_port = listener_port  # the Gateway listener port served (set once the socket is bound)
        self._https_port = https_port  # the plain listener's, with an HTTPS listener: where 308s point
        self.metrics = metrics
        self._addresses = addresses
        self._claims = claims
        self._max_body = max_body
        self._body_timeout = body_timeout
        self.loop = asyncio.get_running_loop()
        self._random = random.random
        self._hosts: dict[str | None, str] = {}

    async def __call__(self, request: ClientRequest) -> Answer:
        routed = self.route(request)
        if not isinstance(routed, Routed):
            return routed
        return await self.proceed(request, routed)

    def dispatch(self, request: FastRequest, owner: ExchangeOwner) -> Answer | Awaitable[Answer] | None:
        """The fast server's entry: an answer now, the rest of the work to await, or None when an
        :class:`Exchange` took the request (it reports to ``owner``)."""
        routed = self.route(request)
        if not isinstance(routed, Routed):
            return routed
        if request.body_exists:
            return self.proceed(request, routed)
        if request.upgrade:
            return open_tunnel(self, request, routed, owner)
        prepared = forward.bodiless(request, fwd=routed.fwd, max_body=self._max_body, where=routed.where)
        if routed.shadow is not None:
            routed.shadow.prepared(prepared)
        target = routed.plan.targets[(routed.upstream, routed.track)]
        conn = target.pool.take_idle()
        if conn is None:
            return self.proceed(request, routed, prepared=prepared)
        Exchange(self, request, routed, prepared, target, owner).begin(conn)
        return None

    def route(self, request: ClientRequest) -> Routed | Answer:
        """Find the route and decide the track (synchronous: everything the decision needs is at hand)."""
        start = self.loop.time()
        table = self._state.table
        if table is None:
            return self._answer(ErrorAnswer(503), _NO_ROUTE, _NO_ROUTE, start)
        where = check_target(request)
        if isinstance(where, int):  # raw: aiohttp would answer in the request's version (HTTP/0.9, 2.0)
            data = error_bytes(where, head_only=request.method == "HEAD")
            return self._answer(forward.RawResponse(where, data, False), _NO_ROUTE, _NO_ROUTE, start)
        fwd = self._addresses.forwarding(request)
        headers = request.headers
        if where is None:
            host, path = self._host(headers.get("host")), request.path
        else:
            raw_host = where.authority.decode("ascii") if where.authority else headers.get("host")
            host, path = self._host(raw_host), where.path
        view = RequestView(
            method=request.method,
            host=host,
            path=path,
            query_string=request.query_string,
            headers=headers,
            client_ip=fwd.client,
            trusted_peer=fwd.trusted_peer,
            client_key=fwd.client_key,
        )
        entry = table.core.match(host, path, view, port=self.listener_port)
        if entry is None:
            return self._answer(ErrorAnswer(404), _NO_ROUTE, _NO_ROUTE, start)
        plan: RoutePlan = table.plans[entry.key]
        if plan.redirect_https and self._https_port is not None:
            moved = self._redirect(request, host, where, fwd)
            if moved is not None:
                return self._answer(moved, plan.label, _NO_ROUTE, start)
        if plan.verifier is not None:
            view.bind_claims(self._claims.lazy(plan.verifier, headers))
        decision = core_decide.decide_entry(entry, view, self._random())
        self.metrics.decision(plan.label, decision.track, decision.reason)
        if decision.status:  # the route answers itself: a redirect, or 500 for no (valid) backend
            answer = own_answer(decision, request, host=host, scheme=fwd.scheme, where=where,
                                port=self.listener_port or 80)  # fmt: skip
            return self._answer(answer, entry.key, decision.track, start)
        shadow: Shadow | MirrorGroup | None = None
        route = entry.route
        if route.mirror is not None and decision.track == "stable":
            shadow = self._mirrors.consider(plan, route, view, request, self._random())
        elif plan.mirrors:
            shadow = self._mirrors.consider_rule(plan, decision.track, view, request, self._random())
        if decision.rewrite is not None:
            where = rewritten(decision, request, where, path)
        return Routed(plan, decision.track, route.upstream_of(decision), fwd, start, where, shadow)

    async def proceed(
        self,
        request: ClientRequest,
        routed: Routed,
        *,
        prepared: forward.Outgoing | None = None,
        failed: UpstreamError | None = None,
        conn: UpstreamConnection | None = None,
    ) -> Answer:
        """The coroutine path from wherever the request is: to prepare, after a failed attempt on a reused
        connection (``failed``), or with the response head in (``conn``)."""
        label = routed.plan.label
        try:
            if conn is not None:
                return await self._respond(request, conn, routed, routed.track, routed.upstream)
            if prepared is None:
                ready = await forward.prepare(
                    request, fwd=routed.fwd, max_body=self._max_body, body_timeout=self._body_timeout,
                    where=routed.where,
                )  # fmt: skip
                if isinstance(ready, int):
                    return self._answer(ErrorAnswer(ready, close=True), label, routed.track, routed.start)
                prepared = ready
                if routed.shadow is not None:
                    routed.shadow.prepared(prepared)
            return await self._forward(request, prepared, routed, failed)
        except (asyncio.CancelledError, ConnectionError):  # the client went away
            self.metrics.request_done(label, routed.track, "499", self.loop.time() - routed.start)
            raise
        finally:
            if routed.shadow is not None:
                routed.shadow.client_done()

    def _redirect(
        self, request: ClientRequest, host: str, where: ClientTarget | None, fwd: Forwarding
    ) -> forward.RawResponse | None:
        """A route's ``tls.redirectHTTP``: a 308 to the same URL over HTTPS, unless no certificate serves
        the host (a redirect would fail), the host is not a plain DNS name, or a trusted proxy in front
        already terminated TLS (``X-Forwarded-Proto: https``)."""
        tls = self._state.tls
        if tls is None or not _DNS_NAME.fullmatch(host) or not tls.serves(host):
            return None
        if fwd.trusted_peer and (request.headers.get("x-forwarded-proto") or "").strip().lower() == "https":
            return None
        raw = request.raw_path if where is None else where.target.decode("utf-8", "surrogateescape")
        target = quote(raw, safe=_URL_SAFE, errors="surrogateescape")  # never a byte a header must not hold
        port = "" if self._https_port == 443 else f":{self._https_port}"
        data = redirect_bytes(f"https://{host}{port}{target}", head_only=request.method == "HEAD")
        return forward.RawResponse(308, data, False)

    def _host(self, raw_host: str | None) -> str:
        host = self._hosts.get(raw_host)
        if host is None:
            host = normalize_host(raw_host)
            if len(self._hosts) < 4096:  # bounded: Host is client-controlled
                self._hosts[raw_host] = host
        return host

    async def _forward(
        self, request: ClientRequest, prepared: forward.Outgoing, routed: Routed, failed: UpstreamError | None
    ) -> Answer:
        plan, track, upstream, start = routed.plan, routed.track, routed.upstream, routed.start
        label = plan.label
        target = plan.targets[(upstream, track)]
        try:
            if failed is not None and not forward.retryable(failed, prepared, reused=True):
                raise failed
            conn = await forward.send(request, prepared, target, fresh=failed is not None)
        except (forward.BodyTooLarge, forward.BadRequestBody) as bad:
            refused = ErrorAnswer(413 if isinstance(bad, forward.BodyTooLarge) else 400, close=True)
            return self._answer(refused, label, track, start)
        except UpstreamError as exc:
            self.metrics.upstream_error(label, track, exc.reason)
            if not (canary_falls_back(exc, track) and prepared.replayable):
                return self._answer(ErrorAnswer(ERROR_STATUS[exc.reason]), label, track, start)
            track, upstream = "stable", plan.config.stable
            fallback = await self._fallback(request, prepared, plan, start)
            if not isinstance(fallback, UpstreamConnection):
                return fallback
            conn = fallback
        return await self._respond(request, conn, routed, track, upstream)

    async def _respond(
        self, request: ClientRequest, conn: UpstreamConnection, routed: Routed, track: str, upstream: str
    ) -> Answer:
        if conn.complete:  # the usual case: the whole response arrived with its head
            return self.whole(request, conn, routed, track, upstream)
        edit = routed.plan.targets[(upstream, track)].response
        if edit is not None:
            edit.apply(conn.head)
        label, shadow = routed.plan.label, routed.shadow if track != "canary" else None
        answer = shadow.stable_print(conn) if shadow is not None else None
        tee = answer.feed if answer is not None and answer.compares_body else None
        streamed = await forward.stream(request, conn, routed.plan.targets[(upstream, track)], tee=tee)
        resp, complete = streamed
        if shadow is not None:
            shadow.stable_end(answer if complete else None)
        if not complete:  # the client got the head and a cut-off body (its connection is aborted)
            self.metrics.upstream_error(label, track, "truncated")
        self.metrics.request_done(
            label, track, _CODE.get(resp.status) or str(resp.status), self.loop.time() - routed.start
        )
        return resp

    def whole(
        self, request: ClientRequest, conn: UpstreamConnection, routed: Routed, track: str, upstream: str
    ) -> forward.RawResponse:
        """A response that arrived whole with its head: one write; its connection goes back to the pool."""
        target = routed.plan.targets[(upstream, track)]
        if target.response is not None:
            target.response.apply(conn.head)
        if routed.shadow is not None and track != "canary":
            routed.shadow.stable_whole(conn)
        resp = forward.whole(request, conn, target.pool)
        code = _CODE.get(resp.status) or str(resp.status)
        self.metrics.request_done(routed.plan.label, track, code, self.loop.time() - routed.start)
        return resp

    async def _fallback(
        self, request: ClientRequest, prepared: forward.Outgoing, plan: RoutePlan, start: float
    ) -> UpstreamConnection | Answer:
        """The canary refused or reset before answering: once more, on stable."""
        label, stable = plan.label, plan.config.stable
        self.metrics.decision(label, "stable", "fallback")
        try:
            return await forward.send(request, prepared, plan.targets[(stable, "stable")])
        except UpstreamError as again:
            self.metrics.upstream_error(label, "stable", again.reason)
            return self._answer(ErrorAnswer(ERROR_STATUS[again.reason]), label, "stable", start)

    def _answer(self, resp: Answer, label: str, track: str, start: float) -> Answer:
        self.metrics.request_done(label, track, str(resp.status), self.loop.time() - start)
        return resp


class Exchange:
    """A bodiless request on an idle keep-alive connection, driven by the upstream's protocol callbacks.

    ``begin`` sends the head; the upstream connection calls :meth:`on_upstream` once the response head
    (usually the whole response) is parsed, or the exchange failed. A whole response goes straight to the
    client; an error (one retry on a fresh connection, the canary's fallback to stable) or a streamed body
    continues as a coroutine. The client connection cancels it when the client goes away.
    """

    __slots__ = ("_conn", "_handler", "_owner", "_prepared", "_request", "_routed", "_target")

    def __init__(
        self,
        handler: ProxyHandler,
        request: FastRequest,
        routed: Routed,
        prepared: forward.Outgoing,
        target: forward.Target,
        owner: ExchangeOwner,
    ) -> None:
        self._handler = handler
        self._request = request
        self._routed = routed
        self._prepared = prepared
        self._target = target
        self._owner = owner
        self._conn: UpstreamConnection | None = None

    def begin(self, conn: UpstreamConnection) -> None:
        self._conn = conn
        conn.listener = self.on_upstream
        self._owner.exchange = self
        forward.start_exchange(self._request, self._prepared, self._target, conn)

    def on_upstream(self, conn: UpstreamConnection) -> None:
        conn.disarm()
        owner, request, routed, handler = self._owner, self._request, self._routed, self._handler
        owner.exchange = None
        if conn.error is not None:
            owner.exchange_continues(request, handler.proceed(request, routed, prepared=self._prepared,
                                                              failed=conn.error))  # fmt: skip
        elif conn.complete:
            owner.exchange_done(request, handler.whole(request, conn, routed, routed.track, routed.upstream))
        else:
            owner.exchange_continues(request, handler.proceed(request, routed, conn=conn))

    def cancel(self) -> None:
        """The client went away before the answer: drop the upstream connection and count a 499."""
        conn = self._conn
        if conn is not None:
            conn.listener = None
            conn.disarm()
            conn.abort()
        routed, handler = self._routed, self._handler
        if routed.shadow is not None:
            routed.shadow.client_done()
        elapsed = handler.loop.time() - routed.start
        handler.metrics.request_done(routed.plan.label, routed.track, "499", elapsed)
