# ruff: noqa: E501  (one-line table rows read better than wrapped ones)
"""Issue 12: what an outside probe of the proxy found, each on both servers (``server_kind``).

Raw requests that must be refused live in ``tests/bad_inputs/requests/*.http`` (first line ``# <status>:
why``, then the request with LF line ends, sent with CRLF).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from proxytest import (
    REPO,
    LocalProxy,
    ProxyProcess,
    Upstream,
    dump,
    raw_exchange,
    route_doc,
    rule,
    spawn_proxy,
    start_local_proxy,
    status_codes,
    write_atomic,
)
from waiting import eventually_async

BAD_REQUESTS = sorted((REPO / "tests" / "bad_inputs" / "requests").glob("*.http"))


def _raw(path: Path) -> tuple[int, bytes]:
    comment, _, request = path.read_text().partition("\n")
    return int(comment.removeprefix("# ").partition(":")[0]), request.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("path", BAD_REQUESTS, ids=[p.stem for p in BAD_REQUESTS])
async def test_bad_raw_requests_are_refused_and_never_forwarded(
    proxy: LocalProxy, stable: Upstream, path: Path
) -> None:
    await proxy.put(route_doc(stable.url, stable.url))
    status, request = _raw(path)
    raw = await raw_exchange(proxy.port, request, within=3)
    assert status_codes(raw) == [status], raw[:200]
    assert stable.seen == []


# -- 1. the head as a whole is bounded ----------------------------------------------------------------

HUGE_HEAD = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(
    b"X-H%d: %b\r\n" % (i, b"v" * 8000) for i in range(98)
)


async def test_a_complete_head_over_the_total_limit_gets_431(proxy: LocalProxy, stable: Upstream) -> None:
    await proxy.put(route_doc(stable.url, stable.url))
    raw = await raw_exchange(proxy.port, HUGE_HEAD + b"\r\n", within=3)
    assert status_codes(raw) == [431] and b"vvvv" not in raw
    assert stable.seen == []


async def test_an_unfinished_head_over_the_limit_is_refused_without_waiting_for_its_end(
    proxy: LocalProxy, stable: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, stable.url))
    pieces = [HUGE_HEAD[i : i + 4096] for i in range(0, len(HUGE_HEAD), 4096)]  # never ends the head
    raw = await _send_until_closed(proxy.port, pieces)
    assert status_codes(raw) == [431]  # the limit answered: the 10 s header deadline closes without an answer


async def test_the_head_limit_is_a_flag(stable: Upstream, tmp_path: Path, server_kind: str) -> None:
    """With ``max_head_bytes`` raised, the same 830 KB head is answered (the per-line limits still hold)."""
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, server=server_kind, max_head_bytes=1 << 20)
    try:
        await p.put(route_doc(stable.url, stable.url))
        raw = await raw_exchange(p.port, HUGE_HEAD + b"Connection: close\r\n\r\n", within=5)
        assert status_codes(raw) == [200]
    finally:
        await p.close()


@pytest.fixture
def process(tmp_path: Path, stable: Upstream, server_kind: str) -> Iterator[ProxyProcess]:
    """The real ``graylane-proxy`` (the shipped defaults but the server under test) in front of ``stable``."""
    conf = tmp_path / "routes"
    conf.mkdir()
    (conf / "route.json").write_text(dump(route_doc(stable.url, stable.url)))
    proc = spawn_proxy(conf, tmp_path / "proxy.log", server=server_kind)
    yield proc
    proc.terminate()


async def test_the_admin_port_has_the_same_head_limits(process: ProxyProcess) -> None:
    admin = process.admin_port
    raw = await raw_exchange(admin, HUGE_HEAD.replace(b"GET /", b"GET /healthz") + b"\r\n", within=3)
    assert status_codes(raw) == [431]
    too_many = (
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"
    )
    assert status_codes(await raw_exchange(admin, too_many, within=3)) == [431]
    ok = b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    assert status_codes(await raw_exchange(admin, ok, within=3)) == [200]


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


MIB = 1 << 20


async def test_memory_stays_bounded_with_many_oversized_heads_in_flight(
    process: ProxyProcess, stable: Upstream
) -> None:
    """150 connections each start an 830 KB head and never end it (the probe's attack). Before the total
    limit each one was buffered whole: ~125 MB more RSS, kept after they closed."""
    pid = process.proc.pid
    for _ in range(20):  # warm: pools, caches, the allocator's first arenas
        assert status_codes(
            await raw_exchange(process.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        ) == [200]
    baseline = _rss(pid)
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    pieces = [HUGE_HEAD[i : i + 16384] for i in range(0, len(HUGE_HEAD), 16384)]
    answers = await asyncio.gather(*(_send_until_closed(process.port, pieces, within=20) for _ in range(150)))
    done.set()
    await sampler
    assert all(status_codes(a) in ([431], []) for a in answers)  # [] : reset while still writing
    assert any(status_codes(a) == [431] for a in answers)
    print(
        f"RSS baseline {baseline / MIB:.0f} MiB, peak +{(peak - baseline) / MIB:.1f}, after +{(_rss(pid) - baseline) / MIB:.1f}"
    )
    assert peak - baseline < 48 * MIB, f"RSS grew by {(peak - baseline) / MIB:.0f} MiB"
    await asyncio.sleep(2.5)  # past the 2 s linger of the refused connections
    assert _rss(pid) - baseline < 24 * MIB, (
        f"RSS stayed {(_rss(pid) - baseline) / MIB:.0f} MiB above baseline"
    )
    assert status_codes(
        await raw_exchange(process.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    ) == [200]


async def _send_until_closed(port: int, pieces: list[bytes], *, within: float = 8.0) -> bytes:
    """Write pieces until the server closes (a refused head), then read what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = b""
    try:
        async with asyncio.timeout(within):
            for piece in pieces:
                if reader.at_eof():
                    break
                writer.write(piece)
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0)
            while chunk := await reader.read(65536):
                out += chunk
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    return out


# -- 2 and 4. the client IP: strict Forwarded, one header believed -----------------------------------------

OFFICE = rule("office", "canary", sourceCIDRs=["203.0.113.0/24"])


async def _client_ip(p: LocalProxy, up: Upstream, headers: dict[str, str]) -> str:
    async with p.session.get(p.url + "/", headers=headers) as resp:
        info = await resp.json()
    return str(dict((k.lower(), v) for k, v in info["headers"])["x-real-ip"]) + "@" + info["svc"]


@pytest.fixture
async def forwarded_proxy(tmp_path: Path, server_kind: str) -> Any:
    conf = tmp_path / "routes-forwarded"
    conf.mkdir()
    p = await start_local_proxy(
        conf, server=server_kind, trusted_proxies=("127.0.0.0/8",), client_ip_header="forwarded"
    )
    yield p
    await p.close()


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("for=203.0.113.5", "203.0.113.5@canary"),
        ('for=203.0.113.5;by="x, for=198.51.100.7', "127.0.0.1@stable"),  # unbalanced quote: the peer
        ("for=198.51.100.7;for=203.0.113.5", "127.0.0.1@stable"),  # a repeated parameter: the peer
        ('for="203.0.113.5"x', "127.0.0.1@stable"),  # bytes after the closing quote
        ("for=203.0.113.5, for=198.51.100.7", "198.51.100.7@stable"),  # the right-most untrusted hop
    ],
)
async def test_forwarded_is_parsed_strictly_and_an_unparseable_one_means_the_peer(
    forwarded_proxy: LocalProxy, stable: Upstream, canary: Upstream, forwarded: str, expected: str
) -> None:
    await forwarded_proxy.put(route_doc(stable.url, canary.url, rules=[OFFICE]))
    assert await _client_ip(forwarded_proxy, stable, {"Forwarded": forwarded}) == expected


async def test_with_both_headers_only_the_configured_one_is_believed(
    proxy: LocalProxy, forwarded_proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    both = {"Forwarded": "for=198.51.100.7", "X-Forwarded-For": "203.0.113.5"}
    for p in (proxy, forwarded_proxy):
        await p.put(route_doc(stable.url, canary.url, rules=[OFFICE]))
    # default (--client-ip-header x-forwarded-for): the front proxy appends XFF, a Forwarded is the client's
    assert await _client_ip(proxy, stable, both) == "203.0.113.5@canary"
    assert await _client_ip(proxy, stable, {"Forwarded": "for=203.0.113.5"}) == "127.0.0.1@stable"
    # --client-ip-header forwarded: the front proxy appends Forwarded, an XFF is the client's
    assert await _client_ip(forwarded_proxy, stable, both) == "198.51.100.7@stable"
    assert await _client_ip(forwarded_proxy, stable, {"X-Forwarded-For": "203.0.113.5"}) == "127.0.0.1@stable"


# -- 3. header names with underscores --------------------------------------------------------------------


async def _wsgi_upstream() -> tuple[web.AppRunner, str, list[dict[str, str]]]:
    """A CGI/WSGI-style upstream: header names folded to ``HTTP_<NAME>`` with ``-`` and ``_`` alike,
    repeated (or colliding) names joined with ``,`` in the order received."""
    environs: list[dict[str, str]] = []

    async def app(request: web.Request) -> web.Response:
        environ: dict[str, str] = {}
        for name, value in request.raw_headers:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            environ[key] = environ[key] + "," + value.decode() if key in environ else value.decode()
        environs.append(environ)
        return web.json_response(environ)

    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", app)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", environs


LOOKALIKES = {"X_Graylane_Track": "canary", "X_Forwarded_For": "203.0.113.5", "X_Real_IP": "203.0.113.5",
              "X_Feature": "forged", "Content_Length": "5", "Transfer_Encoding": "chunked",
              "X_Forwarded_Host": "evil.test"}  # fmt: skip


@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow-underscore-headers"])
async def test_underscore_lookalikes_never_reach_a_wsgi_upstream(
    tmp_path: Path, allow: bool, server_kind: str
) -> None:
    runner, url, environs = await _wsgi_upstream()
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, server=server_kind, allow_underscore_headers=allow)
    try:
        await p.put(route_doc(url, url, requestHeaders={"stable": {"set": {"X-Feature": "off"}}}))
        async with p.session.get(
            p.url + "/", headers={**LOOKALIKES, "X_Custom_Thing": "1", "Host": "shop.test"}
        ) as resp:
            assert resp.status == 200
        (env,) = environs
        assert env["HTTP_X_GRAYLANE_TRACK"] == "stable"
        assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
        assert env["HTTP_X_REAL_IP"] == "127.0.0.1"
        assert env["HTTP_X_FEATURE"] == "off"
        assert env["HTTP_X_FORWARDED_HOST"] == "shop.test"
        assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_TRANSFER_ENCODING" not in env
        assert ("HTTP_X_CUSTOM_THING" in env) is allow  # a harmless underscore name: only with the flag
    finally:
        await p.close()
        await runner.cleanup()


# -- 6. request-target and path --------------------------------------------------------------------------


async def test_the_absolute_form_authority_wins_over_host(
    proxy: LocalProxy, stable: Upstream, canary: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, stable.url, name="a", hosts=["a.test"]), "a.json")
    await proxy.put(route_doc(canary.url, canary.url, name="h", hosts=["h.test"]), "h.json")
    raw = await raw_exchange(
        proxy.port, b"GET http://h.test/x?q=1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    )
    assert status_codes(raw) == [200]
    assert stable.seen == []
    (seen,) = canary.seen
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert seen["path"] == "/x?q=1"
    assert headers["x-forwarded-host"] == "h.test" and headers["host"] == canary.url.removeprefix("http://")


@pytest.mark.parametrize(
    ("target", "routed_to", "upstream_path"),
    [
        ("/x/../admin/users", "canary", "/admin/users"),
        ("/x/%2e%2E/admin", "canary", "/admin"),
        ("/%61dmin/./users", "canary", "/admin/users"),
        ("/admin/../x", "stable", "/x"),
        ("/../../admin", "canary", "/admin"),
        ("/x/%7Euser?a=%2F..", "stable", "/x/~user?a=%2F.."),  # the query is not a path
        ("/admin%20x/..", "stable", "/"),
    ],
)
async def test_the_path_is_normalised_once_for_lookup_rules_and_the_upstream(
    proxy: LocalProxy, stable: Upstream, canary: Upstream, target: str, routed_to: str, upstream_path: str
) -> None:
    await proxy.put(route_doc(stable.url, stable.url, name="root"), "root.json")
    await proxy.put(route_doc(canary.url, canary.url, name="admin", pathPrefix="/admin"), "admin.json")
    raw = await raw_exchange(
        proxy.port, b"GET %b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % target.encode()
    )
    assert status_codes(raw) == [200]
    up = canary if routed_to == "canary" else stable
    assert [s["path"] for s in up.seen] == [upstream_path]


@pytest.mark.parametrize("target", ["/x/../admin", "/%61dmin", "/./admin/x/..", "/x/%2E%2e/admin/"])
async def test_a_path_rule_sees_the_normalised_path(
    proxy: LocalProxy, stable: Upstream, canary: Upstream, target: str
) -> None:
    await proxy.put(
        route_doc(stable.url, canary.url, rules=[rule("admin", "canary", path={"prefix": "/admin"})])
    )
    raw = await raw_exchange(
        proxy.port, b"GET %b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % target.encode()
    )
    assert status_codes(raw) == [200] and stable.seen == []
    assert [s["path"] for s in canary.seen] in (["/admin"], ["/admin/"])


# -- 7. h2c ------------------------------------------------------------------------------------------------

H2C = (b"GET /first HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
       b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")  # fmt: skip


async def test_an_h2c_upgrade_is_answered_plainly_then_the_connection_closes(
    proxy: LocalProxy, stable: Upstream
) -> None:
    await proxy.put(route_doc(stable.url, stable.url))
    second = b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n"
    raw = await raw_exchange(proxy.port, H2C + second, within=5, must_close=True)
    assert status_codes(raw) == [200] and b"Upgrade" not in raw.partition(b"\r\n\r\n")[0]
    assert [s["path"] for s in stable.seen] == ["/first"]
    assert "upgrade" not in {k.lower() for k, _ in stable.seen[0]["headers"]}


# -- 8. HS* secrets in file mode -----------------------------------------------------------------------------


async def test_hs_secrets_in_file_mode_reload_on_change(
    stable: Upstream, canary: Upstream, tmp_path: Path, server_kind: str
) -> None:
    secrets = tmp_path / "secrets" / "graylane-jwt-shop-checkout"  # graylane-jwt-<ns>-<route>/<key>
    secrets.mkdir(parents=True)
    write_atomic(secrets / "hmac", "a" * 48)
    conf = tmp_path / "routes"
    conf.mkdir()
    p = await start_local_proxy(conf, server=server_kind, secrets_dir=tmp_path / "secrets")
    jwt_settings = {"issuer": "https://auth.test", "audiences": ["shop"], "algorithms": ["HS256"], "leewaySeconds": 30,
                    "publicKeys": [], "jwksURL": None, "secretRef": {"name": "graylane-jwt-shop-checkout", "key": "hmac"}}  # fmt: skip
    claims = {"iss": "https://auth.test", "aud": "shop", "role": "beta", "exp": int(time.time()) + 600}
    old, new = (jwt.encode(claims, k * 48, algorithm="HS256") for k in ("a", "b"))

    async def svc(token: str) -> str:
        async with p.session.get(p.url + "/", headers={"Authorization": f"Bearer {token}"}) as resp:
            return str((await resp.json())["svc"])

    try:
        await p.put(route_doc(stable.url, canary.url, jwt=jwt_settings,
                              rules=[rule("beta", "canary", jwtClaims=[{"claim": "role", "exact": "beta"}])]))  # fmt: skip
        assert (await svc(old), await svc(new)) == ("canary", "stable")
        write_atomic(secrets / "hmac", "b" * 48)  # the Secret is rotated
        await eventually_async(lambda: _serves(svc, new, "canary"), what="the rotated secret", within=5)
        assert await svc(old) == "stable"
        (secrets / "hmac").unlink()  # removed: HS tokens count as no claims
        await eventually_async(lambda: _serves(svc, new, "stable"), what="the secret's removal", within=5)
    finally:
        await p.close()


async def _serves(svc: Callable[[str], Awaitable[str]], token: str, track: str) -> bool:
    return await svc(token) == track
