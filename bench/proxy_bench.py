"""``make bench-proxy``: graylane against nginx as a reverse proxy and a direct hit, measured in the same run.

Targets (each behind the same nginx upstream, which answers a fixed 13-byte body):
  direct        wrk -> upstream nginx
  nginx-proxy   wrk -> nginx (1 worker, proxy_pass with upstream keepalive) -> upstream
  graylane      wrk -> graylane-proxy as shipped (file mode, no --server: the chart's defaults) -> upstream
  gl-aiohttp    the reference server: the same plus --server aiohttp (aiohttp's web.Server on the client side)
  aiohttp-floor wrk -> aiohttp web.Server on uvloop with a fixed answer (no upstream): the ceiling of any
                proxy on aiohttp's server, so the report separates graylane's own cost from aiohttp's
Scenarios:
  passthrough   one route, no rules, weight 0
  full-routing  three header rules that miss, a JWT-claim rule on a cached verified RS256 token that misses,
                a CIDR rule that misses, sticky 50 % split keyed on the JWT ``sub`` (both tracks upstream)
TLS (bench/proxy_tls.py, ``--no-tls`` skips it): graylane's HTTPS listener against nginx terminating TLS with
the same certificate: keep-alive req/s, and full handshakes per second with ECDSA P-256 and RSA 2048.
Pinning: the proxy under test on CPU 1, wrk and the upstream on CPU 0 (``taskset``), identical for every
target. nginx-proxy and graylane runs are interleaved (``--rounds``, default 3) and the medians reported, so
load from other processes on the machine hits both alike. Prints req/s, p50 and p99 per target and
graylane's ratios to nginx-proxy. ``--profile`` also runs
graylane once under cProfile and prints the top functions.

Bar (issue 3): full-routing throughput >= 35 % of nginx-proxy's, p99 <= 2.5x nginx-proxy's. Bar (issue 14):
TLS keep-alive req/s holds at least the share of nginx that plain HTTP does, measured in the same rounds.

Then the shadow-traffic scenario (``mirror_scenario.py``, issue 16): 100 % mirrored to a canary answering
in 200 ms, as ratios to the same proxy without mirroring in the same run. ``--only routing|mirror``
(``--only`` also skips the TLS scenarios, as ``--no-tls`` does).
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import jwt
import proxy_tls
from benchkit import (
    HERE,
    LOAD_CPU,
    PROXY_CPU,
    bench_doc,
    check_routes,
    free_port,
    graylane_cmd,
    median_of,
    nginx_conf,
    process,
    wrk,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mirror_scenario import Results, mirror_scenario, report_mirror

from graylane.config.document import canonical_json, seal


def rsa_token() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    claims = {"iss": "https://auth.bench", "aud": "bench", "sub": "u-42", "role": "user",
              "exp": int(time.time()) + 3600}  # fmt: skip
    return pem, jwt.encode(claims, key, algorithm="RS256")


def route_doc(upstream: int, *, full: bool, pem: str) -> str:
    doc = bench_doc(upstream, upstream)
    if full:
        doc["rules"] = [
            {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}},
            {
                "name": "opt-out",
                "to": "stable",
                "match": {"headers": [{"name": "X-Canary", "exact": "false"}]},
            },
            {"name": "beta", "to": "canary", "match": {"headers": [{"name": "X-Beta", "prefix": "yes"}]}},
            {"name": "testers", "to": "canary", "match": {"jwtClaims": [{"claim": "role", "in": ["beta"]}]}},
            {"name": "office", "to": "canary", "match": {"sourceCIDRs": ["203.0.113.0/24", "2001:db8::/32"]}},
        ]
        doc["weight"] = 50
        doc["sticky"] = {"keys": ["jwt:sub", "header:X-User-Id", "sourceIP"]}
        doc["jwt"] = {"issuer": "https://auth.bench", "audiences": ["bench"], "algorithms": ["RS256"],
                      "leewaySeconds": 30, "publicKeys": [pem], "jwksURL": None,
                      "secretRef": None}  # fmt: skip
        doc["requestHeaders"] = {
            "canary": {"set": {"X-Feature": "on"}},
            "stable": {"set": {"X-Feature": "off"}},
        }
    return canonical_json(seal(doc))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs per target; medians are reported")
    ap.add_argument("--profile", action="store_true", help="also profile graylane (cProfile) in full routing")
    ap.add_argument("--only", choices=("routing", "mirror"), help="only these scenarios (default: all)")
    ap.add_argument("--no-tls", dest="tls", action="store_false", help="skip the TLS scenarios")
    args = ap.parse_args()
    args.tls = args.tls and args.only is None
    return args


def tools_present() -> bool:
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench-proxy needs {tool} (apt-get install wrk nginx util-linux)", file=sys.stderr)
            return False
    return True


def main() -> int:
    args = parse_args()
    if not tools_present():
        return 2
    work = Path(tempfile.mkdtemp(prefix="graylane-bench-"))
    pem, token = rsa_token()
    up, ngx, gl, admin, floor = free_port(), free_port(), free_port(), free_port(), free_port()
    gla, admin_a = free_port(), free_port()
    up_conf = nginx_conf(
        work,
        "upstream",
        f"""
  server {{ listen 127.0.0.1:{up} reuseport; location / {{ return 200 "hello, world\\n"; }} }}""",
    )
    px_conf = nginx_conf(
        work,
        "proxy",
        f"""
  upstream up {{ server 127.0.0.1:{up}; keepalive 128; }}
  server {{ listen 127.0.0.1:{ngx}; location / {{ proxy_pass http://up; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }}""",
    )
    conf_dir = work / "routes"
    conf_dir.mkdir()
    scenarios = {
        "passthrough": ([], route_doc(up, full=False, pem=pem)),
        "full-routing": (
            [f"Authorization: Bearer {token}", "X-Canary: maybe"],
            route_doc(up, full=True, pem=pem),
        ),
    }
    if args.only == "mirror":
        scenarios = {}
    results: dict[str, dict[str, dict[str, float]]] = {}
    run = {"seconds": args.seconds, "connections": args.connections}
    env = dict(os.environ)  # as shipped: no interpreter flags the image does not set
    with process(["nginx", "-c", str(up_conf)], cpu=LOAD_CPU, port=up):
        direct = median_of([wrk(f"http://127.0.0.1:{up}/", headers=[], **run) for _ in range(args.rounds)])
        for scenario, (headers, doc) in scenarios.items():
            (conf_dir / "route.json").write_text(doc)
            targets = {
                "nginx-proxy": f"http://127.0.0.1:{ngx}/",
                "graylane": f"http://127.0.0.1:{gl}/",
                "gl-aiohttp": f"http://127.0.0.1:{gla}/",
                "aiohttp-floor": f"http://127.0.0.1:{floor}/",
            }
            samples: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
            with (
                process(["nginx", "-c", str(px_conf)], cpu=PROXY_CPU, port=ngx),
                process(graylane_cmd(conf_dir, gl, admin, None), cpu=PROXY_CPU, port=gl, env=env),
                process(
                    graylane_cmd(conf_dir, gla, admin_a, None, "aiohttp"), cpu=PROXY_CPU, port=gla, env=env
                ),
                process(
                    [sys.executable, str(HERE / "aiohttp_fixed.py"), str(floor)], cpu=PROXY_CPU, port=floor
                ),
            ):
                check_routes(admin, "fast")  # what the chart runs
                check_routes(admin_a, "aiohttp")
                for url in targets.values():  # warm up: pools filled, caches hot
                    wrk(url, headers=headers, seconds=2, connections=args.connections)
                for _ in range(args.rounds):  # interleaved, so a noisy neighbour hits both alike
                    for target, url in targets.items():
                        samples[target].append(wrk(url, headers=headers, **run))
            results[scenario] = {"direct": direct, **{t: median_of(v) for t, v in samples.items()}}
        if args.tls:
            run = {"seconds": args.seconds, "connections": args.connections}
            tls = proxy_tls.run(work, up, rounds=args.rounds, **run)
        if args.profile:
            profile = work / "graylane.prof"
            (conf_dir / "route.json").write_text(scenarios["full-routing"][1])
            with process(graylane_cmd(conf_dir, gl, admin, profile), cpu=PROXY_CPU, port=gl):
                wrk(f"http://127.0.0.1:{gl}/", headers=scenarios["full-routing"][0], **run)
        shadow = (
            None if args.only == "routing" else mirror_scenario(work, upstream=up, rounds=args.rounds, **run)
        )
    if results:
        report(results)
    if args.profile:
        print("\ncProfile of graylane, full routing (top 25 by own time):")
        pstats.Stats(str(work / "graylane.prof")).sort_stats("tottime").print_stats(25)
    shutil.rmtree(work, ignore_errors=True)
    print_bars(results, shadow)
    if args.tls:
        proxy_tls.report(tls)
    return 0


def print_bars(results: dict[str, dict[str, dict[str, float]]], shadow: Results | None) -> None:
    if "full-routing" in results:
        full = results["full-routing"]
        ok = (
            full["graylane"]["rps"] >= 0.35 * full["nginx-proxy"]["rps"]
            and full["graylane"]["p99"] <= 2.5 * full["nginx-proxy"]["p99"]
        )
        print(f"\nbar (full routing: >= 35% of nginx-proxy req/s, p99 <= 2.5x): {'MET' if ok else 'NOT MET'}")
    if shadow is not None:
        print()
        report_mirror(shadow)


def report(results: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"{'scenario':<14}{'target':<13}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for scenario, res in results.items():
        for target, r in res.items():
            print(
                f"{scenario:<14}{target:<13}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['non2xx']:>9.0f}"
            )
        g, n, d, f = res["graylane"], res["nginx-proxy"], res["direct"], res["aiohttp-floor"]
        a = res["gl-aiohttp"]
        print(
            f"{'':<14}ratios: graylane/nginx-proxy req/s {g['rps'] / n['rps']:.0%}, "
            f"p99 {g['p99'] / n['p99']:.2f}x; graylane/direct req/s {g['rps'] / d['rps']:.0%}\n"
            f"{'':<14}        gl-aiohttp/nginx-proxy req/s {a['rps'] / n['rps']:.0%}, "
            f"p99 {a['p99'] / n['p99']:.2f}x\n"
            f"{'':<14}        aiohttp-floor/nginx-proxy req/s {f['rps'] / n['rps']:.0%}, "
            f"graylane/aiohttp-floor {g['rps'] / f['rps']:.0%}"
        )


if __name__ == "__main__":
    sys.exit(main())
