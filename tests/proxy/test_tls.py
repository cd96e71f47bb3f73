"""The HTTPS listener (``--listen-tls``), file mode, on both servers, with a real TLS client (OpenSSL through
``ssl``): SNI picks the certificate (exact, then wildcard), unknown names and no SNI get the
``unrecognized_name`` alert or the default certificate, TLS 1.2/1.3 and ALPN ``http/1.1`` only, the same
routing as plain HTTP with ``X-Forwarded-Proto: https``, per-route 308 to HTTPS, rotation under load with
zero failures, every bad certificate of tests/bad_inputs/tls/ refused while the last good one serves."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from cluster.ports import free_port
from graylane.proxy.app import DATA_PLANE
from proxytest import LocalProxy, Upstream, dump, get_json, rule, spawn_proxy, start_local_proxy
from tlscerts import CORPUS, Ca, key_fragments, write_secret
from tlsclient import client_context, connect, fingerprint, get, refused_alert
from tlstest import SECRET, metric, tls_route
from waiting import eventually_async

UNRECOGNIZED = "TLSV1_UNRECOGNIZED_NAME"


@pytest.fixture
def ca() -> Ca:
    return Ca.create()


async def start_tls_proxy(tmp_path: Path, server: str, **settings: object) -> LocalProxy:
    conf = tmp_path / "routes"
    conf.mkdir(exist_ok=True)
    (tmp_path / "secrets").mkdir(exist_ok=True)
    port = free_port()
    return await start_local_proxy(conf, server=server, tls_host="127.0.0.1", tls_port=port,
                                   https_redirect_port=port, secrets_dir=tmp_path / "secrets",
                                   trusted_proxies=("10.99.0.0/16",), **settings)  # fmt: skip


def tls_port(p: LocalProxy) -> int:
    return int(p.app[DATA_PLANE].tls_port)


@pytest.fixture
async def tlsproxy(tmp_path: Path, server_kind: str) -> AsyncIterator[LocalProxy]:
    p = await start_tls_proxy(tmp_path, server_kind)
    yield p
    await p.close()


async def test_sni_picks_the_certificate_exact_then_wildcard(
    tlsproxy: LocalProxy, tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream
) -> None:
    secrets = tmp_path / "secrets"
    a_crt, a_key = ca.issue(["a.example.test"], kind="ec256")
    w_crt, w_key = ca.issue(["*.w.example.test", "w.example.test"], kind="rsa2048")
    write_secret(secrets, "tls-a", a_crt, a_key)
    write_secret(secrets, "tls-w", w_crt, w_key)
    qa = [rule("qa", "canary", headers=[{"name": "X-Canary", "exact": "true"}])]
    await tlsproxy.put(
        tls_route(stable.url, canary.url, ["a.example.test"], secret="tls-a", rules=qa), "a.json"
    )
    await tlsproxy.put(tls_route(stable.url, canary.url, ["*.w.example.test", "w.example.test"],
                                 secret="tls-w", name="wild"), "w.json")  # fmt: skip
    port, ctx = tls_port(tlsproxy), client_context(ca.pem)

    a = await get(port, "a.example.test", ctx)
    assert a["status"] == 200 and a["fingerprint"] == fingerprint(a_crt) and a["svc"] == "stable"
    assert ["X-Forwarded-Proto", "https"] in a["headers"]
    for name in ("x.w.example.test", "W.example.test"):
        assert (await get(port, name, ctx))["fingerprint"] == fingerprint(w_crt)
    # routing is the listener's business only through X-Forwarded-Proto: the same rule, the same answer
    assert (await get(port, "a.example.test", ctx, headers="X-Canary: true\r\n"))["svc"] == "canary"
    async with tlsproxy.session.get(
        tlsproxy.url, headers={"Host": "a.example.test", "X-Canary": "true"}
    ) as r:
        assert (await r.json())["svc"] == "canary" and ["X-Forwarded-Proto", "http"] in (await r.json())[
            "headers"
        ]

    blind = client_context(ca.pem, check_hostname=False)
    for name in ("a.b.w.example.test", "nowhere.example.test"):  # one label per wildcard; no route at all
        assert UNRECOGNIZED in await refused_alert(port, name, ctx)
    assert UNRECOGNIZED in await refused_alert(port, None, blind)  # no SNI, no default certificate


async def test_tls_1_2_and_1_3_only_and_alpn_http11_only(
    tlsproxy: LocalProxy, tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream
) -> None:
    write_secret(tmp_path / "secrets", SECRET, *ca.issue(["a.example.test"]))
    await tlsproxy.put(tls_route(stable.url, canary.url, ["a.example.test"]))
    port = tls_port(tlsproxy)
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        conn = await connect(port, "a.example.test", client_context(ca.pem, versions=(version, version)))
        assert (
            conn.sslobj.version()
            == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
        )
        assert conn.sslobj.selected_alpn_protocol() == "http/1.1"
        assert (await conn.request("a.example.test"))[0] == 200
        await conn.close()
    h2_only = await connect(port, "a.example.test", client_context(ca.pem, alpn=["h2"]))
    assert h2_only.sslobj.selected_alpn_protocol() is None  # HTTP/2 is not served, so never agreed
    await h2_only.close()
    old = client_context(ca.pem, versions=(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1))
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await (await connect(port, "a.example.test", old)).request("a.example.test")


async def test_plain_http_gets_a_308_only_where_the_route_asks_and_a_certificate_serves(
    tlsproxy: LocalProxy, tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream
) -> None:
    write_secret(tmp_path / "secrets", SECRET, *ca.issue(["a.example.test", "b.example.test"]))
    await tlsproxy.put(tls_route(stable.url, canary.url, ["a.example.test"], redirect=True), "a.json")
    await tlsproxy.put(tls_route(stable.url, canary.url, ["b.example.test"], name="b"), "b.json")
    await tlsproxy.put(tls_route(stable.url, canary.url, ["c.example.test"], name="c", secret="absent",
                                 redirect=True), "c.json")  # fmt: skip
    port = tls_port(tlsproxy)

    async def plain(host: str, path: str = "/p?q=1", method: str = "GET", **headers: str) -> tuple[int, str]:
        async with tlsproxy.session.request(method, tlsproxy.url + path, allow_redirects=False,
                                            headers={"Host": host, **headers}) as resp:  # fmt: skip
            return resp.status, resp.headers.get("Location", "")

    assert await plain("a.example.test") == (308, f"https://a.example.test:{port}/p?q=1")
    assert await plain("A.Example.Test:80", "/x/../y%20z") == (308, f"https://a.example.test:{port}/y%20z")
    assert await plain("a.example.test", method="HEAD") == (308, f"https://a.example.test:{port}/p?q=1")
    assert (await plain("b.example.test"))[0] == 200  # no redirectHTTP
    assert (await plain("c.example.test"))[0] == 200  # no certificate: a redirect would only fail
    # a trusted load balancer in front already terminated TLS: no loop
    fwd = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert (await plain("a.example.test", **fwd))[0] == 308  # from an untrusted peer it counts for nothing
    routes = await get_json(tlsproxy.session, tlsproxy.admin + "/routes")
    assert any("c.example.test" in p and "no certificate" in p for p in routes["tls"]["problems"])


async def test_trusted_x_forwarded_proto_https_is_not_redirected(
    tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    conf = tmp_path / "routes"
    conf.mkdir()
    q = await start_local_proxy(conf, server=server_kind, tls_host="127.0.0.1", tls_port=free_port(),
                                secrets_dir=tmp_path, trusted_proxies=("127.0.0.0/8",))  # fmt: skip
    try:
        write_secret(tmp_path, SECRET, *ca.issue(["a.example.test"]))
        await q.put(tls_route(stable.url, canary.url, ["a.example.test"], redirect=True))
        for proto, status in (("https", 200), ("http", 308)):
            headers = {"Host": "a.example.test", "X-Forwarded-Proto": proto}
            async with q.session.get(q.url, allow_redirects=False, headers=headers) as resp:
                assert resp.status == status
    finally:
        await q.close()


async def test_the_default_certificate_answers_no_sni_and_unknown_names(
    tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    p = await start_tls_proxy(tmp_path, server_kind, default_tls_secret="fallback")
    try:
        d_crt, d_key = ca.issue(["default.example.test"])
        write_secret(tmp_path / "secrets", "fallback", d_crt, d_key)
        write_secret(tmp_path / "secrets", SECRET, *ca.issue(["a.example.test"]))
        await p.put(tls_route(stable.url, canary.url, ["a.example.test"]))
        port, blind = tls_port(p), client_context(ca.pem, check_hostname=False)

        async def default_served() -> bool:
            routes = await get_json(p.session, p.admin + "/routes")
            return any(c["default"] for c in routes["tls"]["certificates"])

        await eventually_async(default_served, what="the default certificate loaded")
        for name in (None, "unknown.example.test"):
            conn = await connect(port, name, blind)
            assert conn.fingerprint == fingerprint(d_crt)
            assert (await conn.request("unknown.example.test"))[0] == 404  # no route: the usual 404
            await conn.close()
        assert (await get(port, "a.example.test", client_context(ca.pem)))["status"] == 200
    finally:
        await p.close()


async def test_rotation_under_load_drops_nothing_and_open_connections_keep_their_certificate(
    tlsproxy: LocalProxy, tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream
) -> None:
    secrets = tmp_path / "secrets"
    first = ca.issue(["a.example.test"])
    write_secret(secrets, SECRET, *first)
    await tlsproxy.put(tls_route(stable.url, canary.url, ["a.example.test"]))
    port, ctx = tls_port(tlsproxy), client_context(ca.pem)
    kept = await connect(port, "a.example.test", ctx)  # opened before every rotation, used after them
    assert (await kept.request("a.example.test"))[0] == 200
    outcomes: list[str] = []
    seen: set[str] = set()
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            try:
                conn = await connect(port, "a.example.test", ctx)  # a full handshake each time
                seen.add(conn.fingerprint)
                for _ in range(3):  # and keep-alive requests on it
                    status, _, _ = await conn.request("a.example.test")
                    outcomes.append(str(status))
                await conn.close()
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError) as exc:
                outcomes.append(repr(exc))

    clients = [asyncio.create_task(client()) for _ in range(6)]
    slow = asyncio.create_task(
        get(port, "a.example.test", ctx, "/sleep?s=1.5")
    )  # in flight across a rotation
    fingerprints = [fingerprint(first[0])]
    for _ in range(5):
        crt, key = ca.issue(["a.example.test"])
        write_secret(secrets, SECRET, crt, key)
        fingerprints.append(fingerprint(crt))

        async def served(expected: str = fingerprints[-1]) -> bool:
            return (await get(port, "a.example.test", ctx))["fingerprint"] == expected

        await eventually_async(served, what="the rotated certificate on new handshakes", within=10)
        # each of 6 clients may still finish an open connection and one mid-handshake (3 requests each) on
        # the previous certificate; the answers after those come from handshakes that began after the swap
        mark = len(outcomes) + 6 * 3 * 2 + 3
        await eventually_async(lambda m=mark: len(outcomes) >= m, what="new handshakes under load")  # type: ignore[misc]
    stop.set()
    await asyncio.gather(*clients)
    assert (await slow)["status"] == 200
    assert (await kept.request("a.example.test"))[0] == 200 and kept.fingerprint == fingerprints[0]
    await kept.close()
    failures = [o for o in outcomes if o != "200"]
    assert not failures, failures[:5]
    assert seen >= set(fingerprints[1:])  # every rotated certificate was served to the load
    assert (
        await metric(tlsproxy.session, tlsproxy.admin, "graylane_tls_rejected_total", reason="key-mismatch")
        is None
    )


CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())


def _case(folder: Path) -> dict[str, str]:
    lines = (folder / "case.txt").read_text().splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


async def test_every_bad_certificate_is_refused_and_the_last_good_one_keeps_serving(
    tlsproxy: LocalProxy, tmp_path: Path, stable: Upstream, canary: Upstream
) -> None:
    secrets = tmp_path / "secrets"
    ca = Ca.create()
    hosts = ["checkout.example.com", "a.b.example.com"]  # the corpus' names (case.txt "hosts")
    good = ca.issue(hosts)
    write_secret(secrets, SECRET, *good)
    await tlsproxy.put(tls_route(stable.url, canary.url, hosts))
    port, ctx = tls_port(tlsproxy), client_context(ca.pem)
    counted: dict[str, int] = {}
    for folder in CASES:
        case = _case(folder)
        if case["reason"] == "not-found":
            shutil.rmtree(secrets / SECRET)
        else:
            write_secret(
                secrets, SECRET, (folder / "tls.crt").read_bytes(), (folder / "tls.key").read_bytes()
            )

        async def refused(case: dict[str, str] = case) -> dict[str, object] | None:
            routes = await get_json(tlsproxy.session, tlsproxy.admin + "/routes")
            found = [r for r in routes["tls"]["rejected"] if r["secret"] == SECRET]
            return found[0] if found and found[0]["reason"] == case["reason"] else None

        rejection = await eventually_async(refused, what=f"{folder.name} refused", within=10)
        assert rejection["servingPrevious"] is True
        paths = [e["path"] for e in rejection["errors"]]  # type: ignore[index]
        assert case["path"] in paths or case["reason"] in ("not-found", "host-mismatch"), (folder.name, paths)
        for host in hosts:  # nothing went down
            answer = await get(port, host, ctx)
            assert answer["status"] == 200 and answer["fingerprint"] == fingerprint(good[0]), folder.name
        counted[case["reason"]] = counted.get(case["reason"], 0) + 1
        value = await metric(
            tlsproxy.session, tlsproxy.admin, "graylane_tls_rejected_total", reason=case["reason"]
        )
        assert value == counted[case["reason"]], (folder.name, value)
        write_secret(secrets, SECRET, *good)  # back to good (refused content is not counted twice)

        async def clean() -> bool:
            routes = await get_json(tlsproxy.session, tlsproxy.admin + "/routes")
            return not routes["tls"]["rejected"]

        await eventually_async(clean, what="good again")


async def test_a_bad_first_certificate_serves_nothing_for_its_hosts_only(
    tlsproxy: LocalProxy, tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream
) -> None:
    secrets = tmp_path / "secrets"
    write_secret(secrets, "bad", (CORPUS / "key-mismatch" / "tls.crt").read_bytes(),
                 (CORPUS / "key-mismatch" / "tls.key").read_bytes())  # fmt: skip
    write_secret(secrets, "good", *ca.issue(["good.example.test"]))
    await tlsproxy.put(tls_route(stable.url, canary.url, ["checkout.example.com"], secret="bad"), "bad.json")
    await tlsproxy.put(
        tls_route(stable.url, canary.url, ["good.example.test"], secret="good", name="g"), "g.json"
    )
    port, ctx = tls_port(tlsproxy), client_context(ca.pem)
    assert UNRECOGNIZED in await refused_alert(port, "checkout.example.com", ctx)
    assert (await get(port, "good.example.test", ctx))["status"] == 200
    routes = await get_json(tlsproxy.session, tlsproxy.admin + "/routes")
    assert [(r["secret"], r["reason"], r["servingPrevious"]) for r in routes["tls"]["rejected"]] == [
        ("bad", "key-mismatch", False)
    ]
    async with tlsproxy.session.get(tlsproxy.url, headers={"Host": "checkout.example.com"}) as resp:
        assert resp.status == 200  # plain HTTP still routes it


async def test_expiry_is_exposed_per_secret(tlsproxy: LocalProxy, tmp_path: Path, ca: Ca,
                                             stable: Upstream, canary: Upstream) -> None:  # fmt: skip
    write_secret(tmp_path / "secrets", SECRET, *ca.issue(["a.example.test"]))  # valid 30 days
    await tlsproxy.put(tls_route(stable.url, canary.url, ["a.example.test"]))
    left = await metric(
        tlsproxy.session, tlsproxy.admin, "graylane_tls_certificate_expiry_seconds", secret=SECRET
    )
    assert left is not None and 29 * 86400 < left <= 30 * 86400


async def test_no_private_key_in_routes_metrics_or_logs_of_the_real_process(
    tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    conf, secrets = tmp_path / "routes", tmp_path / "secrets"
    conf.mkdir()
    good, fallback = ca.issue(["a.example.test"]), ca.issue(["default.example.test"], kind="rsa2048")
    bad_crt, bad_key = (
        (CORPUS / "key-mismatch" / "tls.crt").read_bytes(),
        (CORPUS / "key-mismatch" / "tls.key").read_bytes(),
    )
    write_secret(secrets, SECRET, *good)
    write_secret(secrets, "fallback", *fallback)
    write_secret(secrets, "bad", bad_crt, bad_key)
    (conf / "a.json").write_text(dump(tls_route(stable.url, canary.url, ["a.example.test"], redirect=True)))
    (conf / "b.json").write_text(
        dump(tls_route(stable.url, canary.url, ["checkout.example.com"], secret="bad", name="b"))
    )
    port = free_port()
    extra = ["--listen-tls", f"127.0.0.1:{port}", "--secrets-dir", str(secrets),
             "--default-tls-secret", "fallback", "--log-level", "DEBUG"]  # fmt: skip
    proc = spawn_proxy(conf, tmp_path / "proxy.log", server=server_kind, extra=extra)
    try:
        ctx = client_context(ca.pem)

        async def up() -> bool:
            try:
                return (await get(port, "a.example.test", ctx))["status"] == 200
            except (OSError, ssl.SSLError):
                return False

        await eventually_async(up, what="HTTPS served by the process")
        # the route whose own certificate is bad: the default one answers its handshakes
        blind = await connect(port, "checkout.example.com", client_context(ca.pem, check_hostname=False))
        assert blind.fingerprint == fingerprint(fallback[0])
        await blind.close()
        async with aiohttp.ClientSession() as session:
            routes = await (await session.get(proc.admin + "/routes")).text()
            metrics = await (await session.get(proc.admin + "/metrics")).text()
        assert (
            '"reason": "key-mismatch"' in routes.replace('":"', '": "')
            and "graylane_tls_rejected_total" in metrics
        )
    finally:
        assert proc.terminate() == 0
    seen = {"/routes": routes, "/metrics": metrics, "the log": proc.output()}
    for key in (good[1], fallback[1], bad_key):
        for fragment in key_fragments(key):
            for where, text in seen.items():
                assert fragment.decode() not in text, f"private key material in {where}"
    assert "refused (key-mismatch)" in proc.output()  # the log says what happened, by name and path


async def test_graylane_render_and_file_mode_serve_tls_offline(
    tmp_path: Path, ca: Ca, stable: Upstream, canary: Upstream, server_kind: str
) -> None:
    """``graylane render`` of a CanaryRoute with spec.tls, the Secret laid out under the name the document
    carries (the operator's mirror name), and the proxy in file mode: HTTPS without a cluster."""
    manifests, out, secrets = tmp_path / "manifests", tmp_path / "out", tmp_path / "secrets"
    manifests.mkdir()
    upstreams = [{"apiVersion": "graylane.io/v1alpha1", "kind": "Upstream", "metadata": {"name": n},
                  "spec": {"url": u}} for n, u in (("v1", stable.url), ("v2", canary.url))]  # fmt: skip
    route = {"apiVersion": "graylane.io/v1alpha1", "kind": "CanaryRoute", "metadata": {"name": "checkout"},
             "spec": {"hosts": ["a.example.test"], "stable": "v1", "canary": "v2",
                      "tls": {"secretName": "checkout-tls"}}}  # fmt: skip
    (manifests / "all.yaml").write_text(yaml.safe_dump_all([*upstreams, route]))
    render = [str(Path(sys.executable).with_name("graylane")), "render", "-f", str(manifests), "-o", str(out),
              "-n", "shop"]  # fmt: skip
    await asyncio.to_thread(subprocess.run, render, check=True, capture_output=True)
    doc = json.loads((out / "shop.checkout.json").read_text())
    assert doc["tls"]["secretName"] == "graylane-tls-shop-checkout"
    crt, key = ca.issue(["a.example.test"])
    write_secret(secrets, doc["tls"]["secretName"], crt, key)
    port = free_port()
    extra = ["--listen-tls", f"127.0.0.1:{port}", "--secrets-dir", str(secrets)]
    proc = spawn_proxy(out, tmp_path / "proxy.log", server=server_kind, extra=extra)
    try:

        async def served() -> bool:
            try:
                answer = await get(port, "a.example.test", client_context(ca.pem))
            except (OSError, ssl.SSLError):
                return False
            return answer["status"] == 200 and answer["fingerprint"] == fingerprint(crt)

        await eventually_async(served, what="the rendered route over HTTPS")
    finally:
        assert proc.terminate() == 0
