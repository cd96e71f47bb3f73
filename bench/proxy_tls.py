"""The TLS part of ``make bench-proxy``: graylane's HTTPS listener against nginx terminating TLS with the same
certificate, in the same run as the plain scenarios (bench/proxy_bench.py).

Scenarios (wrk -t1, the proxies pinned to CPU 1 as in the plain ones):
  tls-keepalive       -c50 keep-alive requests over TLS 1.3 (ECDSA P-256 certificate): req/s, p50, p99; the
                      same two processes' plain HTTP listeners are measured in the same interleaved rounds
                      (nginx-plain, graylane-plain), so the bar compares figures taken under the same load
  handshake-ecdsa     every request on a new connection (``Connection: close``): full handshakes per second
  handshake-rsa       the same with an RSA 2048 certificate
Both servers get the certificate as their default (wrk sends the URL's host, 127.0.0.1, as SNI: an address no
route names), nginx without session tickets or cache, so every new connection is a full handshake on both.
The bar (issue 14): keep-alive req/s over TLS holds at least the fraction of nginx that plain HTTP does.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from benchkit import PROXY_CPU, median_of, nginx_conf, process, wrk
from cluster.ports import free_port
from tlscerts import Ca, write_secret

from graylane.config.document import canonical_json, seal

SECRET = "bench-tls"
Sample = dict[str, float]


def write_certs(work: Path) -> dict[str, tuple[Path, Path]]:
    """An ECDSA P-256 and an RSA 2048 certificate as files (nginx) and as Secret dirs (graylane)."""
    ca = Ca.create()
    out = {}
    for kind in ("ec256", "rsa2048"):
        crt, key = ca.issue(["bench.test"], kind=kind)
        folder = write_secret(work / f"secrets-{kind}", SECRET, crt, key)
        out[kind] = (folder / "tls.crt", folder / "tls.key")
    return out


def nginx_server(port: int, plain: int, crt: Path, key: Path) -> str:
    return f"""
  server {{ listen 127.0.0.1:{port} ssl; listen 127.0.0.1:{plain};
    ssl_certificate {crt}; ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache off;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme; }} }}"""


def route_doc(upstream: int) -> str:
    doc = {
        "schemaVersion": 1, "route": {"namespace": "bench", "name": "app", "uid": "u-bench", "generation": 1},
        "hosts": [], "pathPrefix": "/", "stable": "v1", "canary": "v2",
        "upstreams": {name: {"url": f"http://127.0.0.1:{upstream}", "metadata": {"version": name},
                             "timeoutSeconds": 30, "maxConnections": 1024} for name in ("v1", "v2")},
        "rules": [], "versionRouting": None, "weight": 0, "salt": "bench/app", "sticky": None, "jwt": None,
        "requestHeaders": {},
    }  # fmt: skip
    return canonical_json(seal(doc))


def graylane_tls_cmd(conf_dir: Path, secrets: Path, port: int, tls: int, admin: int) -> list[str]:
    """As the chart runs it with tls.enabled (file mode instead of --kube), the certificate as default."""
    return [sys.executable, "-m", "graylane.proxy.cli", "--config-dir", str(conf_dir),
            "--listen", f"127.0.0.1:{port}", "--listen-tls", f"127.0.0.1:{tls}",
            "--admin-listen", f"127.0.0.1:{admin}", "--secrets-dir", str(secrets),
            "--default-tls-secret", SECRET, "--log-level", "WARNING"]  # fmt: skip


def run(
    work: Path, upstream: int, *, rounds: int, seconds: int, connections: int
) -> dict[str, dict[str, Sample]]:
    """Every TLS scenario, nginx and graylane interleaved over ``rounds``; medians per target."""
    certs = write_certs(work)
    conf_dir = work / "tls-routes"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "route.json").write_text(route_doc(upstream))
    results: dict[str, dict[str, Sample]] = {}
    plan = {"tls-keepalive": ("ec256", []), "handshake-ecdsa": ("ec256", ["Connection: close"]),
            "handshake-rsa": ("rsa2048", ["Connection: close"])}  # fmt: skip
    for scenario, (kind, headers) in plan.items():
        crt, key = certs[kind]
        ngx, ngx_plain, gl, gl_tls, admin = (free_port() for _ in range(5))
        upstream_block = f"\n  upstream up {{ server 127.0.0.1:{upstream}; keepalive 128; }}"
        conf = nginx_conf(work, f"tls-{scenario}", upstream_block + nginx_server(ngx, ngx_plain, crt, key))
        targets = {"nginx-tls": f"https://127.0.0.1:{ngx}/", "graylane-tls": f"https://127.0.0.1:{gl_tls}/"}
        if not headers:  # keep-alive: the plain listeners of the same processes, in the same rounds
            targets |= {
                "nginx-plain": f"http://127.0.0.1:{ngx_plain}/",
                "graylane-plain": f"http://127.0.0.1:{gl}/",
            }
        samples: dict[str, list[Sample]] = {t: [] for t in targets}
        cmd = graylane_tls_cmd(conf_dir, crt.parent.parent, gl, gl_tls, admin)
        load = {"headers": headers, "connections": connections}
        nginx = ["nginx", "-c", str(conf)]
        with process(nginx, cpu=PROXY_CPU, port=ngx), process(cmd, cpu=PROXY_CPU, port=gl_tls):
            for url in targets.values():  # warm up
                wrk(url, seconds=2, **load)
            for _ in range(rounds):  # interleaved, so a noisy neighbour hits both alike
                for target, url in targets.items():
                    samples[target].append(wrk(url, seconds=seconds, **load))
        results[scenario] = {t: median_of(v) for t, v in samples.items()}
    return results


def report(results: dict[str, dict[str, Sample]]) -> bool:
    """Print the TLS rows and ratios; True when the bar holds."""
    columns = f"{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'sock err':>9}"
    print(f"\n{'scenario':<17}{'target':<15}{columns}")
    for scenario, res in results.items():
        for target, r in res.items():
            cells = f"{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['non2xx']:>9.0f}{r['errors']:>9.0f}"
            print(f"{scenario:<17}{target:<15}{cells}")
        g, n = res["graylane-tls"], res["nginx-tls"]
        share, tail = g["rps"] / n["rps"], g["p99"] / n["p99"]
        print(f"{'':<17}ratio: graylane-tls/nginx-tls req/s {share:.0%}, p99 {tail:.2f}x")
    keepalive = results["tls-keepalive"]
    tls_ratio = keepalive["graylane-tls"]["rps"] / keepalive["nginx-tls"]["rps"]
    plain_ratio = keepalive["graylane-plain"]["rps"] / keepalive["nginx-plain"]["rps"]
    ok = tls_ratio >= plain_ratio
    shares = f"TLS keep-alive share of nginx {tls_ratio:.0%} >= plain share {plain_ratio:.0%}, same rounds"
    print(f"\nbar ({shares}): {'MET' if ok else 'NOT MET'}")
    return ok
