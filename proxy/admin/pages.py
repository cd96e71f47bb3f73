"""The admin port: ``/healthz``, ``/readyz``, ``/metrics``, ``/routes``, ``/explain``.

``/explain`` answers which route, track, upstream and reason a described request would get, on the table
being served. GET takes ``host``, ``path``, ``method``, ``query`` (a query string), ``clientIP``, ``sample``
and repeated ``header=Name:Value``; POST takes the same as JSON with ``headers`` as an object.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from graylane.proxy.admin.workers import Siblings, SiblingUnavailable, WorkerView, merged, snapshot
from graylane.proxy.metrics import Metrics
from graylane.proxy.routing.jwtclaims import ClaimsSource
from graylane.proxy.routing.state import RouteState

from graylane.config.mirrorblock import mismatch_rate
from graylane.routing import decide as core_decide
from graylane.routing.request import Headers, RequestView, normalize_host

STATE = web.AppKey("state", RouteState)
METRICS = web.AppKey("metrics", Metrics)
CLAIMS = web.AppKey("claims", ClaimsSource)
SIBLINGS = web.AppKey("siblings", Siblings)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """Ready when this worker and (with ``--workers N``) every sibling is: the kernel feeds them all."""
    mine = worker_view(request.app)
    if not mine.ready:
        return _not_ready(mine.why)
    siblings = request.app.get(SIBLINGS)
    if siblings is not None:
        try:
            views = await siblings.views()
        except SiblingUnavailable as exc:
            return _not_ready(str(exc))
        for view in views:
            if not view.ready:
                return _not_ready(f"worker {view.index}: {view.why}")
    return web.Response(text="ready\n")


def _not_ready(why: str) -> web.Response:
    return web.Response(status=503, text=f"not ready: {why}\n")


async def metrics(request: web.Request) -> web.Response:
    """This worker's metrics, or with ``--workers N`` the pod's (merged; 503 if a sibling is silent)."""
    m = request.app[METRICS]
    m.ready = int(request.app[STATE].ready)
    siblings = request.app.get(SIBLINGS)
    if siblings is not None:
        try:
            views = await siblings.views()
        except SiblingUnavailable as exc:
            return web.Response(status=503, text=f"metrics unavailable: {exc}\n")
        m = merged([snapshot(m), *(view.metrics for view in views)])
    return web.Response(text=m.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


def worker_view(app: web.Application) -> WorkerView:
    """This worker's readiness and metrics (what its siblings ask for over its Unix socket)."""
    state, m = app[STATE], app[METRICS]
    m.ready = int(state.ready)
    why = "" if state.ready else ("draining" if state.draining else "no route table loaded yet")
    siblings = app.get(SIBLINGS)
    return WorkerView(siblings.index if siblings else 0, state.ready, why, snapshot(m))


async def routes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    table = state.table
    loaded = []
    for source, entry in sorted(state.sources.items()):
        cfg = entry.config
        if cfg is None:
            continue
        serving = table is not None and table.plans.get(cfg.key) is not None
        loaded.append({
            "route": cfg.key, "source": source, "generation": cfg.route.generation,
            "checksum": cfg.checksum, "weight": cfg.weight, "stable": cfg.stable, "canary": cfg.canary,
            "hosts": list(cfg.hosts), "pathPrefix": cfg.path_prefix, "serving": serving,
            "mirror": cfg.mirror.percent if cfg.mirror is not None else None,
            "kind": cfg.route.kind,
        })  # fmt: skip
        if cfg.is_http:
            listeners = [{"port": item.port, "hostname": item.hostname, "hosts": list(item.hosts)}
                         for item in cfg.listeners]  # fmt: skip
            loaded[-1].update(rules=len(cfg.http_rules), listeners=listeners, stable=None, canary=None,
                              weight=None, pathPrefix=None)  # fmt: skip
    rejected = [
        {
            "source": e.rejection.source,
            "reason": e.rejection.reason,
            "errors": [{"path": err.path, "message": err.message} for err in e.rejection.errors],
            "at": e.rejection.at,
            "servingPrevious": e.config is not None,
        }
        for _, e in sorted(state.sources.items())
        if e.rejection is not None
    ]
    body = {
        "server": request.app[METRICS].info.get("server"),
        "ready": state.ready,
        "tableSerial": table.serial if table else 0,
        "routes": loaded,
        "rejected": rejected,
        "conflicts": list(getattr(table.core, "conflicts", ())) if table else [],
        "configRejectedTotal": dict(request.app[METRICS].config_rejected),
        "tls": state.tls.describe() if state.tls is not None else None,
    }
    return web.json_response(body, dumps=_dumps)


async def explain(request: web.Request) -> web.Response:
    state = request.app[STATE]
    table = state.table
    if table is None:
        return web.json_response({"error": "no route table loaded yet"}, status=503)
    try:
        spec = await _explain_input(request)
        view, sample = _view(spec, request.app[CLAIMS], table)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    result = core_decide.explain(table.core, view, sample, port=explain_port(spec, table.core))
    if result.get("mirror") is not None:
        result["mirror"]["observed"] = mirror_observed(request.app[METRICS], result["route"])
    return web.json_response({"request": spec, "sample": sample, **result}, dumps=_dumps)


def mirror_observed(m: Metrics, route: str) -> dict[str, Any]:
    """This worker's counts for ``route``'s mirrored requests: results and the mismatch rate."""
    counts = {result: float(n) for (r, result), n in m.mirror.items() if r == route}
    compared, mismatches, rate = mismatch_rate(counts)
    return {
        "results": {k: int(v) for k, v in sorted(counts.items())},
        "compared": int(compared),
        "mismatches": int(mismatches),
        "mismatchRate": None if rate is None else round(rate, 3),
    }


async def _explain_input(request: web.Request) -> dict[str, Any]:
    if request.method == "POST":
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data
    q = request.query
    headers: dict[str, str] = {}
    for item in q.getall("header", []):
        name, sep, value = item.partition(":")
        if not sep:
            raise ValueError(f"header must be Name:Value, got {item!r}")
        headers[name.strip()] = value.strip()
    spec: dict[str, Any] = {
        k: q[k] for k in ("host", "path", "method", "query", "clientIP", "sample", "port") if k in q
    }
    spec["headers"] = headers
    return spec


def _view(spec: Mapping[str, Any], claims: ClaimsSource, table: Any) -> tuple[RequestView, float]:
    headers = spec.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError("headers must be an object of strings")
    hdrs = Headers(headers)
    sample = float(spec.get("sample", random.random()))
    if not 0.0 <= sample < 1.0:
        raise ValueError("sample must be in [0, 1)")
    path = str(spec.get("path", "/"))
    host = str(spec.get("host") or hdrs.get("host") or "")
    view = RequestView(
        method=str(spec.get("method", "GET")).upper(),
        host=normalize_host(host),
        path=path,
        query_string=str(spec.get("query", "")).lstrip("?"),
        headers=hdrs,
        client_ip=str(spec.get("clientIP") or "127.0.0.1"),
        claims=None,
    )
    entry = table.core.match(view.host, view.path, view, port=explain_port(spec, table.core))
    plan = table.plans.get(entry.key) if entry is not None else None
    if plan is not None:
        view.bind_claims(claims.lazy(plan.verifier, hdrs))
    return view, sample


def explain_port(spec: Mapping[str, Any], core: Any) -> int | None:
    """The listener port to explain for: ``port`` as given, else the only one the table has, else none."""
    if "port" in spec:
        return int(spec["port"])
    ports = list(core.ports)
    return ports[0] if len(ports) == 1 else None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


def create_admin_app(*, state: RouteState, metrics_: Metrics, claims: ClaimsSource) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[STATE] = state
    app[METRICS] = metrics_
    app[CLAIMS] = claims
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/routes", routes)
    app.router.add_route("GET", "/explain", explain)
    app.router.add_route("POST", "/explain", explain)
    return app
