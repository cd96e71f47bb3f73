"""The shadow-traffic scenario of ``make bench-proxy`` (issue 16): 100 % of the requests mirrored to a canary
that answers in 200 ms, against the same proxy command without mirroring, interleaved in one run.

Both proxies run the chart's command (default ``--mirror-max-in-flight 100``) pinned to the proxy CPU, one
loaded at a time; stable is the nginx upstream, the canary an aiohttp server that sleeps 200 ms per answer
(on the load CPU). With 100 in flight and 200 ms per answer, at most ~500 copies a second reach the canary:
the rest are dropped and counted, as the issue asks (never queued). The report gives the client's
throughput and p99 with mirroring as ratios to without, and how many requests were mirrored or dropped.

Bar: client p99 <= 1.2x, throughput >= 70 % of the run without mirroring.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from pathlib import Path

from benchkit import (
    HERE,
    LOAD_CPU,
    PROXY_CPU,
    bench_doc,
    check_routes,
    cpu_seconds,
    free_port,
    graylane_cmd,
    median_of,
    process,
    wrk,
)

from graylane.config.document import canonical_json, seal

CANARY_DELAY_MS = 200
P99_BAR, RPS_BAR = 1.2, 0.70
Results = dict[str, dict[str, float]]


def mirror_doc(stable: int, canary: int, *, percent: float | None) -> str:
    """The passthrough route (weight 0, no rules) with its canary on ``canary`` and ``mirror`` when given."""
    doc = bench_doc(stable, canary)
    if percent is not None:
        doc["mirror"] = {"percent": percent, "methods": [], "maxBodyBytes": 65536,
                         "compare": {"body": False, "ignoreHeaders": []}}  # fmt: skip
    return canonical_json(seal(doc))


def mirror_scenario(work: Path, *, upstream: int, rounds: int, seconds: int, connections: int) -> Results:
    """Median client figures without (``no-mirror``) and with 100 % mirroring (``mirror-100``), and the
    mirror's counts (``mirrored``)."""
    canary, plain, mirrored, admin_p, admin_m = (free_port() for _ in range(5))
    dirs = {"no-mirror": work / "plain", "mirror-100": work / "mirrored"}
    for name, path in dirs.items():
        path.mkdir()
        percent = 100.0 if name == "mirror-100" else None
        (path / "route.json").write_text(mirror_doc(upstream, canary, percent=percent))
    targets = {"no-mirror": f"http://127.0.0.1:{plain}/", "mirror-100": f"http://127.0.0.1:{mirrored}/"}
    samples: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
    run = {"seconds": seconds, "connections": connections, "headers": []}
    slow = [sys.executable, str(HERE / "aiohttp_fixed.py"), str(canary), str(CANARY_DELAY_MS)]
    with (
        process(slow, cpu=LOAD_CPU, port=canary),
        process(graylane_cmd(dirs["no-mirror"], plain, admin_p, None), cpu=PROXY_CPU, port=plain) as p_plain,
        process(
            graylane_cmd(dirs["mirror-100"], mirrored, admin_m, None), cpu=PROXY_CPU, port=mirrored
        ) as p_m,
    ):
        check_routes(admin_p, "fast")
        check_routes(admin_m, "fast")
        pids = {"no-mirror": p_plain.pid, "mirror-100": p_m.pid}
        for url in targets.values():
            wrk(url, headers=[], seconds=2, connections=connections)
        for _ in range(rounds):
            for target, url in targets.items():
                before = cpu_seconds(pids[target])
                sample = wrk(url, **run)  # type: ignore[arg-type]
                sample["cpu_us"] = 1e6 * (cpu_seconds(pids[target]) - before) / (sample["rps"] * seconds)
                samples[target].append(sample)
        counts = mirror_counts(admin_m)
    return {**{t: median_of(v) for t, v in samples.items()}, "mirrored": counts}


def mirror_counts(admin: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.findall(r'graylane_mirror_total\{route="bench/app",result="([a-z-]+)"\} (\d+)', text)
    return {result: float(n) for result, n in found}


def report_mirror(res: Results) -> bool:
    """Print the scenario and return whether the bar is met."""
    plain, mirrored, counts = res["no-mirror"], res["mirror-100"], res["mirrored"]
    for target in ("no-mirror", "mirror-100"):
        r = res[target]
        print(
            f"{'mirror':<14}{target:<13}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['non2xx']:>9.0f}"
        )
    rps, p99 = mirrored["rps"] / plain["rps"], mirrored["p99"] / plain["p99"]
    cpu = mirrored["cpu_us"] / plain["cpu_us"]
    sent = sum(v for k, v in counts.items() if k not in ("dropped", "too-large"))
    total = sent + counts.get("dropped", 0) + counts.get("too-large", 0)
    print(
        f"{'':<14}ratios: 100% mirror (canary {CANARY_DELAY_MS} ms) / no mirror: "
        f"req/s {rps:.0%}, p99 {p99:.2f}x\n"
        f"{'':<14}        proxy CPU per client request {mirrored['cpu_us']:.1f} us vs "
        f"{plain['cpu_us']:.1f} us ({cpu:.2f}x; less sensitive to other load on the machine than req/s)\n"
        f"{'':<14}        copies sent to the canary {sent:.0f} of {total:.0f} "
        f"({', '.join(f'{k} {v:.0f}' for k, v in sorted(counts.items()))})"
    )
    ok = rps >= RPS_BAR and p99 <= P99_BAR
    bar = f"100% mirror: >= {RPS_BAR:.0%} req/s, p99 <= {P99_BAR}x of no mirror"
    print(f"bar ({bar}): {'MET' if ok else 'NOT MET'}")
    return ok
