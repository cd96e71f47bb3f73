# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""Gateway API documents (schema 2) through the real proxy in front of real upstreams on loopback.

Aspects: weighted backends (zero weight never, an invalid backend's share and an empty rule answer 500);
Exact/PathPrefix/header/query/method matches; RequestHeaderModifier set/add/remove as the upstream sees it,
the client's Host kept and no X-Graylane-Track; redirects with Location; listener ports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from proxytest import LocalProxy, Upstream, free_port, gateway_doc, http_rule, start_local_proxy


@pytest.fixture
async def gw(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    """A Gateway's proxy: it serves listener port 80 (on a free port of its own)."""
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, server=server_kind, listener_port=80)
    yield p
    await p.close()


def prefix(value: str, **conditions: Any) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": value}, **conditions}


def exact(value: str, **conditions: Any) -> dict[str, Any]:
    return {"path": {"type": "Exact", "value": value}, **conditions}


async def answer(proxy: LocalProxy, path: str = "/", **kw: Any) -> tuple[int, Any]:
    kw.setdefault("headers", {}).setdefault("Host", "gw.test")
    async with proxy.session.get(proxy.url + path, allow_redirects=False, **kw) as resp:
        if resp.status == 200:
            return 200, await resp.json()
        return resp.status, resp.headers


async def test_weights_split_among_backends_and_zero_gets_nothing(
    gw: LocalProxy, stable: Upstream, canary: Upstream, third: Upstream
) -> None:
    urls = {"v1": stable.url, "v2": canary.url, "v3": third.url}
    await gw.put(gateway_doc(urls, http_rule(backends=[("v1", 70), ("v2", 30), ("v3", 0)])))
    seen = Counter([(await answer(gw))[1]["svc"] for _ in range(300)])
    assert set(seen) == {"stable", "canary"}, "weight 0 never gets a request"
    assert 150 < seen["stable"] < 270, seen  # 70 % of 300 = 210; these bounds fail once in ~10^9 runs


async def test_invalid_backends_answer_500_for_their_share(gw: LocalProxy, stable: Upstream) -> None:
    await gw.put(gateway_doc({"v1": stable.url}, http_rule(prefix("/half"), backends=[("v1", 1), (None, 1)]),
                             http_rule(prefix("/none"), backends=[(None, 5)]),
                             http_rule(prefix("/empty"), backends=[]),
                             http_rule(prefix("/zero"), backends=[("v1", 0)])))  # fmt: skip
    codes = Counter([(await answer(gw, "/half"))[0] for _ in range(100)])
    assert set(codes) == {200, 500}, codes
    for path in ("/none", "/empty", "/zero"):
        assert (await answer(gw, path))[0] == 500, path


async def test_matches_pick_the_rule(gw: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    rules = [
        http_rule(exact("/exact"), backends=[("v2", 1)]),
        http_rule(prefix("/p", headers=[{"name": "X-Version", "exact": "two"}]), backends=[("v2", 1)]),
        http_rule(prefix("/p", query=[{"name": "v", "exact": "2"}]), backends=[("v2", 1)]),
        http_rule(prefix("/p", method="POST"), backends=[("v2", 1)]),
        http_rule(prefix("/"), backends=[("v1", 1)]),
    ]
    await gw.put(gateway_doc({"v1": stable.url, "v2": canary.url}, *rules))
    cases = [("/exact", {}, "canary"), ("/exact/more", {}, "stable"), ("/p/x", {}, "stable"),
             ("/p/x", {"headers": {"x-version": "two"}}, "canary"), ("/p/x", {"params": {"v": "2"}}, "canary"),
             ("/px", {"headers": {"X-Version": "two"}}, "stable")]  # fmt: skip
    for path, kw, expected in cases:
        status, body = await answer(gw, path, **kw)
        assert (status, body["svc"]) == (200, expected), (path, kw)
    async with gw.session.post(gw.url + "/p/x", headers={"Host": "gw.test"}) as resp:
        assert (await resp.json())["svc"] == "canary"


async def test_request_header_modifier_and_host(gw: LocalProxy, stable: Upstream) -> None:
    filters = {"requestHeaders": {"set": {"X-Set": "new"}, "add": {"X-Add": "added"}, "remove": ["X-Gone"]}}
    await gw.put(gateway_doc({"v1": stable.url}, http_rule(filters=filters)))
    sent = {"Host": "shop.example.com:80", "X-Set": "old", "X-Add": "mine", "X-Gone": "1",
            "X-Graylane-Track": "canary", "X-Other": "kept"}  # fmt: skip
    _, body = await answer(gw, headers=sent)
    got: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        got.setdefault(name.lower(), []).append(value)
    assert got["x-set"] == ["new"] and got["x-add"] == ["mine", "added"] and got["x-other"] == ["kept"]
    assert "x-gone" not in got and "x-graylane-track" not in got
    assert got["host"] == ["shop.example.com:80"], "an HTTPRoute's upstream gets the client's Host"


async def test_redirects_answer_with_location(gw: LocalProxy, stable: Upstream) -> None:
    rules = [
        http_rule(prefix("/moved"), backends=[], filters={"redirect": {"hostname": "example.org"}}),
        http_rule(prefix("/secure"), backends=[], filters={"redirect": {"scheme": "https", "statusCode": 301}}),
        http_rule(prefix("/old"), backends=[],
                  filters={"redirect": {"path": {"type": "ReplacePrefixMatch", "value": "/new"}, "port": 8080}}),
    ]  # fmt: skip
    await gw.put(gateway_doc({"v1": stable.url}, *rules))
    status, headers = await answer(gw, "/moved/x?a=1")
    assert (status, headers["Location"]) == (302, "http://example.org/moved/x?a=1")
    status, headers = await answer(gw, "/secure")
    assert (status, headers["Location"]) == (301, "https://gw.test/secure")
    status, headers = await answer(gw, "/old/page")
    assert (status, headers["Location"]) == (302, "http://gw.test:8080/new/page")
    assert stable.seen == [], "a redirect never reaches a backend"


async def test_documents_are_served_on_their_listener_ports_only(gw: LocalProxy, stable: Upstream) -> None:
    listeners = [{"port": 443, "hosts": []}, {"port": 80, "hosts": ["*.example.com"]}]
    await gw.put(gateway_doc({"v1": stable.url}, http_rule(), listeners=listeners))
    assert (await answer(gw, headers={"Host": "a.example.com"}))[0] == 200
    assert (await answer(gw, headers={"Host": "example.com"}))[0] == 404
    await gw.put(gateway_doc({"v1": stable.url}, http_rule(), listeners=[{"port": 8080, "hosts": []}],
                             generation=2))  # fmt: skip
    assert (await answer(gw, headers={"Host": "a.example.com"}))[0] == 404


async def test_admin_pages_show_gateway_documents(gw: LocalProxy, stable: Upstream) -> None:
    await gw.put(gateway_doc({"v1": stable.url}, http_rule(exact("/x"), backends=[("v1", 1)])))
    async with gw.session.get(gw.admin + "/routes") as resp:
        (route,) = (await resp.json())["routes"]
    assert route["kind"] == "HTTPRoute" and route["rules"] == 1
    assert route["listeners"] == [{"port": 80, "hostname": None, "hosts": []}] and route["stable"] is None
    async with gw.session.get(gw.admin + "/explain", params={"host": "gw.test", "path": "/x"}) as resp:
        out = await resp.json()
    assert (out["route"], out["upstream"], out["reason"]) == ("infra/web", "v1", "backend")
    async with gw.session.get(gw.admin + "/explain", params={"path": "/x", "port": "8080"}) as resp:
        assert (await resp.json())["reason"] == "no-route"


async def test_each_gateway_port_serves_its_own_routes(
    tmp_path: Path, server_kind: str, stable: Upstream, canary: Upstream
) -> None:
    """A Gateway with HTTP listeners on 80 and 8080 (``--also-listen HOST:PORT=8080``): a route attached to one
    port is served there only, on the address serving that port."""
    conf = tmp_path / "routes"
    conf.mkdir()
    second = free_port()
    p = await start_local_proxy(conf, server=server_kind, listener_port=80,
                                more_listeners=(("127.0.0.1", second, 8080),))  # fmt: skip
    try:
        await p.put(gateway_doc({"v1": stable.url}, http_rule(prefix("/")), name="on-80",
                                listeners=[{"port": 80, "hosts": []}]), "a.json")  # fmt: skip
        await p.put(gateway_doc({"v2": canary.url}, http_rule(prefix("/"), backends=[("v2", 1)]), name="on-8080",
                                listeners=[{"port": 8080, "hosts": []}]), "b.json")  # fmt: skip
        status, seen = await answer(p, "/x")
        assert (status, seen["svc"]) == (200, "stable")
        async with p.session.get(f"http://127.0.0.1:{second}/x", headers={"Host": "gw.test"}) as resp:
            assert resp.status == 200 and (await resp.json())["svc"] == "canary"
    finally:
        await p.close()
