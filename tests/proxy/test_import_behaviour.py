"""The ingress-nginx canary behaviour table (tests/canary_cases.py, written from ingress-nginx's
documentation), end to end: ``graylane import ingress-nginx`` -> ``graylane render`` -> the proxy in file
mode -> requests -> the track each request got.

The Ingresses are the main Ingress ``checkout`` (Service checkout-v1 = stable) and a canary Ingress (Service
checkout-v2 = canary) on shop.example.com /. The imported files are used as written except that the two
Upstreams point at the loopback test servers instead of the Services.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from canary_cases import CASES, Case
from ingress_manifests import HOST, dump, pair
from proxytest import LocalProxy, Upstream, start_local_proxy

from graylane.cli.main import main
from graylane.routing.sticky import bucket, threshold


@contextlib.asynccontextmanager
async def imported(
    tmp_path: Path, annotations: dict[str, str], stable: Upstream, canary: Upstream, server: str, *flags: str
) -> AsyncIterator[tuple[LocalProxy, dict[str, object]]]:
    """The proxy serving what the import wrote (yields it and the CanaryRoute spec)."""
    source, out, local, rendered, conf = (
        tmp_path / n for n in ("in.yaml", "imported", "local", "rendered", "conf")
    )
    source.write_text(dump(pair(annotations)))
    assert main(["import", "ingress-nginx", "-f", str(source), "-o", str(out), *flags]) == 0
    route = to_loopback(out, local, {"checkout-v1": stable.url, "checkout-v2": canary.url})
    assert main(["render", "-f", str(local), "-o", str(rendered)]) == 0
    (document,) = rendered.iterdir()
    conf.mkdir()
    proxy = await start_local_proxy(conf, server=server)
    try:
        await proxy.put(json.loads(document.read_text()), document.name)
        yield proxy, route["spec"]
    finally:
        await proxy.close()


def to_loopback(out: Path, local: Path, urls: dict[str, str]) -> dict[str, object]:
    """Copy the imported files with each Upstream's ``service`` replaced by the loopback ``url``."""
    local.mkdir()
    (path,) = out.iterdir()
    docs = list(yaml.safe_load_all(path.read_text()))
    for doc in docs:
        if doc["kind"] == "Upstream":
            del doc["spec"]["service"]
            doc["spec"]["url"] = urls[doc["metadata"]["name"]]
    (local / path.name).write_text(yaml.safe_dump_all(docs))
    (route,) = [d for d in docs if d["kind"] == "CanaryRoute"]
    return dict(route)


async def track(proxy: LocalProxy, headers: dict[str, str]) -> str:
    async with proxy.session.get(proxy.url + "/checkout", headers={"Host": HOST, **headers}) as resp:
        assert resp.status == 200, await resp.text()
        seen = await resp.json()
    sent = dict((k.lower(), v) for k, v in seen["headers"])["x-graylane-track"]
    assert sent == seen["svc"], "the proxy's X-Graylane-Track names the upstream that answered"
    return str(seen["svc"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_imported_route_sends_each_request_where_ingress_nginx_did(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str, case: Case
) -> None:
    async with imported(tmp_path, case.annotations, stable, canary, server_kind) as (proxy, _):
        got = [(headers, await track(proxy, headers)) for headers, _ in case.requests]
    assert got == case.requests


async def test_partial_weight_is_a_per_request_random_draw(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    """Without --sticky each request is drawn anew, as in ingress-nginx: one client sees both tracks."""
    async with imported(tmp_path, {"canary-weight": "500", "canary-weight-total": "1000"}, stable, canary,
                        server_kind) as (proxy, spec):  # fmt: skip
        assert spec["weight"] == 50 and "sticky" not in spec
        tracks = [await track(proxy, {"X-User-Id": "same-user"}) for _ in range(200)]
    # 200 draws at 50 %: outside 40..160 canaries has probability below 1e-17
    assert 40 <= tracks.count("canary") <= 160


async def test_partial_weight_with_sticky_follows_the_documented_hash(
    tmp_path: Path, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    """With --sticky the same 25 % holds per user: bucket(salt, user) < weight x 100
    (docs/route-config.md)."""
    annotations = {"canary-weight": "250", "canary-weight-total": "1000"}
    sticky = ("--sticky", "header:X-User-Id")
    async with imported(tmp_path, annotations, stable, canary, server_kind, *sticky) as (proxy, spec):
        assert spec["weight"] == 25 and spec["sticky"] == {"keys": ["header:X-User-Id"]}
        users = [f"user-{i}" for i in range(40)]
        got = {u: await track(proxy, {"X-User-Id": u}) for u in users}
        again = {u: await track(proxy, {"X-User-Id": u}) for u in users}
    expected = {u: "canary" if bucket("shop/checkout", u) < threshold(25) else "stable" for u in users}
    assert got == expected == again
    assert set(got.values()) == {"stable", "canary"}
