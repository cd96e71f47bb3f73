# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""Gateway API extended filters through the real proxy (both servers) in front of real upstreams on loopback.

Aspects: ResponseHeaderModifier on whole and streamed answers; URLRewrite hostname and path (prefix, full,
escapes kept, query kept); RequestMirror (the client gets the primary's answer, the copy arrives with the
rule's request headers, 0 % never); rule timeouts (504 on expiry, ``0`` lifts the upstream's own);
backendRef header filters after the rule's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from proxytest import LocalProxy, Upstream, gateway_doc, http_rule, start_local_proxy, start_upstream
from waiting import eventually_async

from graylane.config.document import seal


@pytest.fixture
async def gw(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, server=server_kind, listener_port=80)
    yield p
    await p.close()


def prefix(value: str) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": value}}


def header_lists(pairs: list[list[str]]) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for name, value in pairs:
        got.setdefault(name.lower(), []).append(value)
    return got


async def get(proxy: LocalProxy, path: str, **headers: str) -> tuple[int, Any, Any]:
    headers.setdefault("Host", "gw.test")
    async with proxy.session.get(proxy.url + path, headers=headers, allow_redirects=False) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, resp.headers, body


async def test_response_header_modifier(gw: LocalProxy, stable: Upstream) -> None:
    edit = {
        "set": {"X-Upstream": "overwritten", "X-Set": "s"},
        "add": {"X-Add": "a", "Content-Type": "x/y"},
        "remove": ["X-Gone-Never-Sent", "Server"],
    }
    rules = [http_rule(prefix("/edit"), filters={"responseHeaders": edit}),
             http_rule(prefix("/big"), filters={"responseHeaders": {"set": {"X-Stream": "yes"}}}),
             http_rule(prefix("/lower"), filters={"responseHeaders": {"set": {"x-UPSTREAM": "low"}}}),
             http_rule(prefix("/plain"))]  # fmt: skip
    await gw.put(gateway_doc({"v1": stable.url}, *rules))
    status, headers, _ = await get(gw, "/edit")
    assert status == 200
    assert (
        headers.getall("X-Upstream") == ["overwritten"]
        and headers["X-Set"] == "s"
        and headers["X-Add"] == "a"
    )
    assert headers.getall("Content-Type") == ["application/json; charset=utf-8", "x/y"], "add appends"
    assert "Server" not in headers
    status, headers, body = await get(gw, "/big?n=300000")  # streamed, not whole with its head
    assert (status, len(body), headers.getall("X-Stream")) == (200, 300000, ["yes"])
    _, headers, _ = await get(gw, "/lower")
    assert headers.getall("X-Upstream") == ["low"], "names compare case-insensitively"
    _, headers, _ = await get(gw, "/plain")
    assert headers["X-Upstream"] == "stable" and "X-Set" not in headers


REWRITES = [  # (rule filters, request path, path the upstream sees) -- HTTPRouteRewritePath
    ({"path": {"type": "ReplacePrefixMatch", "value": "/one"}}, "/prefix/one/two?q=1", "/one/two?q=1"),
    ({"path": {"type": "ReplacePrefixMatch", "value": "/one"}}, "/prefix/one/a%20b", "/one/a%20b"),
    ({"path": {"type": "ReplacePrefixMatch", "value": "/one"}}, "/prefix/one/", "/one/"),
    ({"path": {"type": "ReplacePrefixMatch", "value": "/"}}, "/prefix/one/three", "/three"),
    ({"path": {"type": "ReplacePrefixMatch", "value": "/"}}, "/prefix/one", "/"),
    ({"path": {"type": "ReplaceFullPath", "value": "/full"}}, "/prefix/one/x/y?z=2", "/full?z=2"),
]


@pytest.mark.parametrize(("rewrite", "path", "seen"), REWRITES)
async def test_url_rewrite_path(
    gw: LocalProxy, stable: Upstream, rewrite: dict[str, Any], path: str, seen: str
) -> None:
    await gw.put(
        gateway_doc({"v1": stable.url}, http_rule(prefix("/prefix/one"), filters={"rewrite": rewrite}))
    )
    status, _, body = await get(gw, path)
    assert (status, body["path"]) == (200, seen)


async def test_url_rewrite_hostname_with_headers(gw: LocalProxy, stable: Upstream) -> None:
    filters = {"rewrite": {"hostname": "one.example.org"}, "requestHeaders": {"add": {"X-Add": "1"}}}
    await gw.put(
        gateway_doc({"v1": stable.url}, http_rule(prefix("/one"), filters=filters), http_rule(prefix("/")))
    )
    _, _, body = await get(gw, "/one", Host="rewrite.example")
    got = header_lists(body["headers"])
    assert got["host"] == ["one.example.org"] and got["x-add"] == ["1"] and body["path"] == "/one"
    assert got["x-forwarded-host"] == ["rewrite.example"], "the client's Host stays visible"
    _, _, body = await get(gw, "/two", Host="rewrite.example")
    assert header_lists(body["headers"])["host"] == ["rewrite.example"]


async def test_request_mirror(gw: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    mirrored = {"mirrors": [{"upstream": "v2"}], "requestHeaders": {"set": {"X-Set": "s"}}}
    rules = [http_rule(prefix("/mirror"), filters=mirrored),
             http_rule(prefix("/never"), filters={"mirrors": [{"upstream": "v2", "percent": 0}]})]  # fmt: skip
    await gw.put(gateway_doc({"v1": stable.url, "v2": canary.url}, *rules))
    for _ in range(5):
        status, _, body = await get(gw, "/never")
        assert (status, body["svc"]) == (200, "stable")
    status, _, body = await get(gw, "/mirror/x?a=1")
    assert (status, body["svc"]) == (200, "stable"), "the client gets the primary's answer"
    await eventually_async(lambda: canary.seen, what="the mirror got its copy", within=10)
    (copy,) = canary.seen
    assert copy["path"] == "/mirror/x?a=1" and header_lists(copy["headers"])["x-set"] == ["s"]
    async with gw.session.post(
        gw.url + "/mirror/post", data=b"body" * 100, headers={"Host": "gw.test"}
    ) as resp:
        assert (resp.status, (await resp.json())["svc"]) == (200, "stable")
    await eventually_async(lambda: len(canary.seen) == 2, what="the POST's copy", within=10)
    assert canary.seen[1]["len"] == 400 and canary.seen[1]["method"] == "POST"


async def test_a_mirror_that_fails_never_affects_the_client(gw: LocalProxy, stable: Upstream) -> None:
    await gw.put(gateway_doc({"v1": stable.url, "gone": "http://127.0.0.1:9"},
                             http_rule(filters={"mirrors": [{"upstream": "gone"}]})))  # fmt: skip
    for _ in range(3):
        status, _, body = await get(gw, "/x")
        assert (status, body["svc"]) == (200, "stable")


async def test_timeouts(gw: LocalProxy, stable: Upstream) -> None:
    def sleep(rule: str) -> dict[str, Any]:
        return {**prefix("/sleep"), "query": [{"name": "rule", "exact": rule}]}

    rules = [http_rule(sleep("request"), timeouts={"request": 0.2}),
             http_rule(sleep("backend"), timeouts={"backendRequest": 0.2}),
             http_rule(sleep("none"), timeouts={"request": 0, "backendRequest": 0}),
             http_rule(prefix("/"))]  # fmt: skip
    doc = gateway_doc({"v1": stable.url}, *rules)
    doc["upstreams"]["v1"]["timeoutSeconds"] = 0.1  # the upstream's own: what /none lifts
    await gw.put(seal({k: v for k, v in doc.items() if k != "checksum"}))
    assert (await get(gw, "/sleep?rule=request&s=0"))[0] == 200
    for path in ("/sleep?rule=request&s=3", "/sleep?rule=backend&s=3", "/sleep?s=3"):
        assert (await get(gw, path))[0] == 504, path
    status, _, body = await get(gw, "/sleep?rule=none&s=0.3")
    assert (status, body["path"]) == (200, "/sleep?rule=none&s=0.3")


async def test_backend_filters_follow_the_rule(gw: LocalProxy, stable: Upstream) -> None:
    rule = http_rule(filters={"requestHeaders": {"set": {"X-Rule": "r", "X-Both": "rule"}},
                              "responseHeaders": {"add": {"X-Resp": "rule"}}})  # fmt: skip
    rule["backends"][0]["filters"] = {"requestHeaders": {"set": {"X-Both": "backend"}, "remove": ["X-Rule"]},
                                      "responseHeaders": {"add": {"X-Resp": "backend"}}}  # fmt: skip
    await gw.put(gateway_doc({"v1": stable.url}, rule))
    status, headers, body = await get(gw, "/")
    got = header_lists(body["headers"])
    assert status == 200 and got["x-both"] == ["backend"] and "x-rule" not in got
    assert headers.getall("X-Resp") == ["rule", "backend"]


async def test_multiple_mirrors_each_get_a_copy(gw: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    third = await start_upstream("third")
    try:
        mirrors = {"mirrors": [{"upstream": "v2"}, {"upstream": "v3"}]}
        urls = {"v1": stable.url, "v2": canary.url, "v3": third.url}
        await gw.put(gateway_doc(urls, http_rule(filters=mirrors)))

        async def chunks() -> AsyncIterator[
            bytes
        ]:  # chunked: streamed to the primary, one tee for both copies
            for _ in range(5):
                yield b"x" * 10_000

        async with gw.session.post(gw.url + "/both", data=chunks(), headers={"Host": "gw.test"}) as resp:
            assert (resp.status, (await resp.json())["svc"]) == (200, "stable")
        await eventually_async(
            lambda: canary.seen and third.seen, what="both mirrors got their copy", within=10
        )
        assert [(u.seen[0]["path"], u.seen[0]["len"]) for u in (canary, third)] == [("/both", 50_000)] * 2
    finally:
        await third.runner.cleanup()


async def test_regex_path_and_header_matches(gw: LocalProxy, stable: Upstream, canary: Upstream) -> None:
    """RegularExpression path and header matches (RE2, the whole value). A regex path ranks after every
    prefix of its host tier (docs/gateway-api.md), so this route has no catch-all: misses are 404."""
    rules = [
        http_rule({"path": {"type": "RegularExpression", "value": "/items/[0-9]+"}}, backends=[("v2", 1)]),
        http_rule({**prefix("/h"), "headers": [{"name": "X-Tier", "regex": "gold|plat(inum)?"}]}),
    ]
    await gw.put(gateway_doc({"v1": stable.url, "v2": canary.url}, *rules))
    for path, headers, svc in [("/items/42", {}, "canary"), ("/h", {"X-Tier": "platinum"}, "stable")]:
        status, _, body = await get(gw, path, **headers)
        assert (status, body["svc"]) == (200, svc), (path, headers)
    for path, headers in [("/items/42/x", {}), ("/items/x", {}), ("/h", {"X-Tier": "goldish"}), ("/h", {})]:
        assert (await get(gw, path, **headers))[0] == 404, (path, headers)
