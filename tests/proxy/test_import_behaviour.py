# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""The ingress-nginx canary behaviour table, end to end: ``graylane import ingress-nginx`` -> ``graylane
render`` -> the proxy in file mode -> requests -> the track each request got.

Every row is a rule of ingress-nginx's documentation, docs/user-guide/nginx-configuration/annotations.md,
section "Canary" (quoted in the comments), as its balancer implements it (rootfs/etc/nginx/lua/balancer.lua,
``route_to_alternative_balancer``). The Ingresses are the main Ingress ``checkout`` (Service checkout-v1 =
stable) and a canary Ingress (Service checkout-v2 = canary) on shop.example.com /. The imported files are
used as written except that the two Upstreams point at the loopback test servers instead of the Services.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ingress_manifests import HOST, dump, pair
from proxytest import LocalProxy, Upstream, start_local_proxy

from graylane.cli.main import main
from graylane.routing.sticky import bucket, threshold

ALWAYS, NEVER, OTHER = {"X-Canary": "always"}, {"X-Canary": "never"}, {"X-Canary": "maybe"}


def cookie(value: str, name: str = "canary") -> dict[str, str]:
    return {"Cookie": f"{name}={value}"}


@dataclass(frozen=True)
class Case:
    name: str
    annotations: dict[str, str]
    requests: list[tuple[dict[str, str], str]]  # request headers -> the track ingress-nginx sends it to


CASES = [
    # "canary-by-header: ... When the request header is set to always, it will be routed to the canary. When the
    # header is set to never, it will never be routed to the canary. For any other value, the header will be
    # ignored and the request compared against the other canary rules by precedence."
    Case("header always/never/other, weight 0", {"canary-by-header": "X-Canary"},
         [({}, "stable"), (ALWAYS, "canary"), (NEVER, "stable"), (OTHER, "stable"), ({"X-Canary": "Always"}, "stable")]),
    Case("header never beats weight 100", {"canary-by-header": "X-Canary", "canary-weight": "100"},
         [({}, "canary"), (ALWAYS, "canary"), (NEVER, "stable"), (OTHER, "canary")]),
    # "canary-by-header-value: The header value to match ... When the request header is set to this value, it
    # will be routed to the canary. For any other header value, the header will be ignored ..."
    Case("header value", {"canary-by-header": "X-Canary", "canary-by-header-value": "v2"},
         [({"X-Canary": "v2"}, "canary"), (ALWAYS, "stable"), ({"X-Canary": "V2"}, "stable"), ({}, "stable")]),
    Case("header value: never is just another value", {"canary-by-header": "X-Canary", "canary-by-header-value": "v2", "canary-weight": "100"},
         [(NEVER, "canary"), ({"X-Canary": "v2"}, "canary"), ({}, "canary")]),
    # "canary-by-header-pattern: This works the same way as canary-by-header-value except it does PCRE Regex
    # matching" (ngx.re.match: a search anywhere in the value)
    Case("header pattern searches", {"canary-by-header": "X-Canary", "canary-by-header-pattern": "beta"},
         [({"X-Canary": "is-beta-user"}, "canary"), ({"X-Canary": "beta"}, "canary"), ({"X-Canary": "alpha"}, "stable"), ({}, "stable")]),
    Case("header pattern anchored", {"canary-by-header": "X-Canary", "canary-by-header-pattern": "^v[0-9]+$"},
         [({"X-Canary": "v12"}, "canary"), ({"X-Canary": "xv12"}, "stable"), ({"X-Canary": "v12a"}, "stable")]),
    # "Note that when canary-by-header-value is set this annotation will be ignored."
    Case("header pattern ignored when a value is set", {"canary-by-header": "X-Canary", "canary-by-header-value": "yes", "canary-by-header-pattern": ".*"},
         [({"X-Canary": "no"}, "stable"), ({"X-Canary": "yes"}, "canary")]),
    # balancer.lua reads the header as $http_<name with - replaced by _>: X_Canary is the X-Canary header
    Case("header name with underscore", {"canary-by-header": "X_Canary"},
         [(ALWAYS, "canary"), (NEVER, "stable")]),
    # "canary-by-cookie: ... When the cookie value is set to always, it will be routed to the canary. When the
    # cookie is set to never, it will never be routed to the canary. For any other value, the cookie will be
    # ignored and the request compared against the other canary rules by precedence."
    Case("cookie always/never/other, weight 0", {"canary-by-cookie": "canary"},
         [(cookie("always"), "canary"), (cookie("never"), "stable"), (cookie("maybe"), "stable"), ({}, "stable"), (cookie("always", "other"), "stable")]),
    Case("cookie never beats weight 100", {"canary-by-cookie": "canary", "canary-weight": "100"},
         [(cookie("never"), "stable"), (cookie("maybe"), "canary"), ({}, "canary")]),
    # "Canary rules are evaluated in order of precedence. Precedence is as follows:
    # canary-by-header -> canary-by-cookie -> canary-weight"
    Case("header before cookie", {"canary-by-header": "X-Canary", "canary-by-cookie": "canary"},
         [({**NEVER, **cookie("always")}, "stable"), ({**ALWAYS, **cookie("never")}, "canary"),
          ({**OTHER, **cookie("always")}, "canary"), (cookie("never"), "stable")]),
    Case("header value, then cookie, then weight", {"canary-by-header": "X-Canary", "canary-by-header-value": "v2", "canary-by-cookie": "canary", "canary-weight": "100"},
         [({"X-Canary": "v3", **cookie("never")}, "stable"), ({"X-Canary": "v2", **cookie("never")}, "canary"), ({"X-Canary": "v3"}, "canary")]),
    # "canary-weight: ... A weight of 0 implies that no requests will be sent to the service in the Canary
    # ingress by this canary rule. A weight of <weight-total> means implies all requests will be sent to the
    # alternative service specified in the Ingress."
    Case("weight 0", {"canary-weight": "0"}, [({}, "stable")] * 20),
    Case("weight 100", {"canary-weight": "100"}, [({}, "canary")] * 20),
    # "<weight-total> defaults to 100, and can be increased via nginx.ingress.kubernetes.io/canary-weight-total"
    Case("weight equal to a raised total", {"canary-weight": "1000", "canary-weight-total": "1000"}, [({}, "canary")] * 20),
    Case("weight 0 of a raised total", {"canary-weight": "0", "canary-weight-total": "1000"}, [({}, "stable")] * 20),
]  # fmt: skip


@contextlib.asynccontextmanager
async def imported(
    tmp_path: Path, annotations: dict[str, str], stable: Upstream, canary: Upstream, server: str, *flags: str
) -> AsyncIterator[tuple[LocalProxy, dict[str, object]]]:
    """The proxy serving what the import wrote (yields it and the CanaryRoute spec)."""
    source, out, local, rendered, conf = (tmp_path / n for n in ("in.yaml", "imported", "local", "rendered", "conf"))
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
    """With --sticky the same 25 % holds per user: bucket(salt, user) < weight x 100 (docs/route-config.md)."""
    annotations = {"canary-weight": "250", "canary-weight-total": "1000"}
    async with imported(tmp_path, annotations, stable, canary, server_kind, "--sticky", "header:X-User-Id") as (
        proxy, spec,
    ):  # fmt: skip
        assert spec["weight"] == 25 and spec["sticky"] == {"keys": ["header:X-User-Id"]}
        users = [f"user-{i}" for i in range(40)]
        got = {u: await track(proxy, {"X-User-Id": u}) for u in users}
        again = {u: await track(proxy, {"X-User-Id": u}) for u in users}
    expected = {u: "canary" if bucket("shop/checkout", u) < threshold(25) else "stable" for u in users}
    assert got == expected == again
    assert set(got.values()) == {"stable", "canary"}
