"""The rows of ``make bench-scale`` that need no cluster: render, file-mode proxy, decide, bad input.

* ``graylane render`` of the manifests: wall time, CPU, peak RSS (``wait4``).
* File-mode proxy over the rendered directory plus one invalid document: start to ``/readyz`` 200, CPU at
  that moment, RSS once ready and its high-water mark; the invalid document rejected alone.
* One route rewritten (atomic rename) -> ``/explain`` shows its new weight: p50/p99 over ``changes``.
* A 1 MiB document (the ConfigMap limit) written -> served.
* A burst of 1,000 rewrites of one route within about a second -> the last one served; how many swaps.
* ``decide`` (lookup + decision) at 10 and at N routes, in-process: microseconds per call.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import timeit
from pathlib import Path
from typing import Any

from common import BIN, Results, cpu_seconds, explain_weight, get, percentile, proc_status, proxy, wait_for

from graylane.config.document import canonical_json, load_route_document, seal
from graylane.routing.decide import RouteTable, decide
from graylane.routing.request import RequestView

INVALID = "zz-invalid-route.json"


def render(objects: Path, out: Path, results: Results) -> None:
    started = time.monotonic()
    proc = subprocess.Popen([str(BIN / "graylane"), "render", "-f", str(objects), "-o", str(out)],
                            stdout=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"graylane render failed ({status})")
    count = len(list(out.glob("*.json")))
    results.put("render_s", round(wall, 1))
    results.put("render_cpu_s", round(usage.ru_utime + usage.ru_stime, 1))
    results.put("render_mib", round(usage.ru_maxrss / 1024, 0))
    results.note(f"render wrote {count} documents")


def write_doc(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(canonical_json(seal(doc)) + "\n")
    os.replace(tmp, path)


def invalid_document(docs: Path) -> dict[str, Any]:
    """A copy of the first route under a new name, with a regex RE2 refuses."""
    doc = json.loads(next(iter(sorted(docs.glob("*.json")))).read_text())
    doc["route"]["name"] = "invalid-route"
    doc["hosts"] = ["invalid.example.com"]
    doc["rules"][0]["match"] = {"headers": [{"name": "X-Bad", "regex": "(a"}]}
    return seal(doc)


def big_document(template: dict[str, Any], size: int) -> dict[str, Any]:
    """A valid route document of about ``size`` bytes: many rules with long ``in`` lists."""
    doc = json.loads(json.dumps(template))
    doc["route"]["name"] = "big-route"
    doc["hosts"] = ["big.example.com"]
    doc["pathPrefix"] = "/"
    values = [f"user-{i:08d}-{'x' * 8}" for i in range(500)]
    rule_bytes = len(json.dumps(values)) + 100
    count = min(size // rule_bytes, 1000)
    match = {"headers": [{"name": "X-User", "in": values}]}
    doc["rules"] = [{"name": f"r{i}", "to": "canary", "match": match} for i in range(count)]
    return doc


def file_mode(docs: Path, logs: Path, results: Results, *, changes: int) -> None:
    (docs / INVALID).write_text(canonical_json(invalid_document(docs)) + "\n")
    routes = len(list(docs.glob("*.json"))) - 1
    with proxy(["--config-dir", str(docs)], logs / "proxy-file.log") as p:
        results.put("file_ready_s", round(p.wait_ready(), 1))
        results.put("file_ready_cpu_s", round(cpu_seconds(p.proc.pid), 1))
        time.sleep(2)
        results.put("file_rss_mib", round(proc_status(p.proc.pid, "VmRSS")))
        results.put("file_hwm_mib", round(proc_status(p.proc.pid, "VmHWM")))
        results.put("file_rejected", p.metric("graylane_config_rejected_total"))
        served = _served(p.admin)
        results.put("file_served_routes", served)
        results.note(f"file mode: {routes} valid documents + 1 invalid; {served} served")
        latencies = [_change_one(docs, p.admin, i) for i in range(changes)]
        results.put("file_change_p50_ms", round(percentile(latencies, 50) * 1000, 1))
        results.put("file_change_p99_ms", round(percentile(latencies, 99) * 1000, 1))
        _big(docs, p.admin, results)
        _burst(docs, p, results)
    (docs / INVALID).unlink()


def _served(admin: str) -> int:
    _, body = get(admin + "/metrics", timeout=60)
    return sum(1 for line in body.decode().splitlines() if line.startswith("graylane_config_generation{"))


def _route_file(docs: Path, i: int) -> tuple[Path, dict[str, Any]]:
    files = sorted(p for p in docs.glob("*.json") if p.name != INVALID)
    path = files[(i * 7919) % len(files)]  # spread over the directory
    return path, json.loads(path.read_text())


def _change_one(docs: Path, admin: str, i: int) -> float:
    path, doc = _route_file(docs, i)
    weight = 37.0 if doc["weight"] != 37 else 38.0
    doc["weight"] = weight
    doc["route"]["generation"] += 1
    host = doc["hosts"][0].replace("*.", "x.") if doc["hosts"] else "any.example.com"
    started = time.monotonic()
    write_doc(path, doc)
    wait_for(lambda: explain_weight(admin, host, doc["pathPrefix"]) == weight, deadline=30)
    return time.monotonic() - started


def _big(docs: Path, admin: str, results: Results) -> None:
    _, template = _route_file(docs, 0)
    doc = seal(big_document(template, 1_000_000))
    text = canonical_json(doc)
    path = docs / "big-route.json"
    started = time.monotonic()
    path.write_text(text)
    try:
        results.put("big_doc_load_s", round(wait_for(lambda: explain_weight(admin, "big.example.com", "/")
                                                     is not None, deadline=60) + 0, 2))  # fmt: skip
    finally:
        results.put("big_doc_kib", round(len(text.encode()) / 1024))
        path.unlink()
    results.note(
        f"1 MiB document: {len(doc['rules'])} rules, served {time.monotonic() - started:.2f} s after "
        "the write"
    )


def _burst(docs: Path, p: Any, results: Results) -> None:
    path, doc = _route_file(docs, 3)
    host = doc["hosts"][0].replace("*.", "x.") if doc["hosts"] else "any.example.com"
    reloads, coalesced = (
        p.metric("graylane_config_reloads_total"),
        p.metric("graylane_config_coalesced_total"),
    )
    started = time.monotonic()
    for n in range(1000):
        doc["weight"] = n % 100
        doc["route"]["generation"] += 1
        write_doc(path, doc)
    written = time.monotonic() - started
    last = float(doc["weight"])
    settle = wait_for(lambda: explain_weight(p.admin, host, doc["pathPrefix"]) == last, deadline=60)
    swaps = p.metric("graylane_config_reloads_total") - reloads
    results.put("burst_writes_s", round(written, 2))
    results.put("burst_swaps", int(swaps))
    results.put("burst_coalesced", int(p.metric("graylane_config_coalesced_total") - coalesced))
    results.put("burst_last_served_ms", round(settle * 1000, 1))


def decide_rows(docs: Path, results: Results) -> None:
    configs = [
        load_route_document(path.read_bytes()) for path in sorted(docs.glob("*.json")) if path.name != INVALID
    ]
    by_name = {c.route.name: c for c in configs}
    few = [by_name[f"svc-{i}"] for i in range(10)]
    views = _views()
    for label, table in (("10", RouteTable.build(few)), ("N", RouteTable.build(configs))):
        per = []
        for view in views:
            assert decide(table, view, 0.5) is not None or view.host == "unknown.example.org"
            runs = timeit.repeat(lambda t=table, v=view: decide(t, v, 0.5), number=20_000, repeat=5)
            per.append(min(runs) / 20_000 * 1e6)
        results.put(f"decide_{label}_us", round(sum(per) / len(per), 2))
    results.note(
        "decide: mean over 6 requests (exact host, shared host + prefix, wildcard, any host, rule hit, 404)"
    )


def _views() -> list[RequestView]:
    def view(host: str, path: str, **headers: str) -> RequestView:
        lower = {k.lower(): v for k, v in headers.items()}
        return RequestView(method="GET", host=host, path=path, headers=lower, client_ip="198.51.100.7")

    return [
        view("svc-2.example.com", "/cart/items", **{"x-user-id": "u-17"}),
        view("api.example.com", "/svc-5/orders/1", **{"x-user-id": "u-17"}),
        view("eu.svc-1.apps.example.com", "/", **{"x-user-id": "u-17"}),
        view("whatever.example.net", "/any/svc-3/x"),
        view("svc-4.example.com", "/", **{"x-canary": "true"}),
        view("unknown.example.org", "/nothing"),
    ]


def base_rss(logs: Path, results: Results) -> None:
    """The proxy with no route at all: what every per-route figure is measured above."""
    empty = logs / "empty-routes"
    empty.mkdir()
    with proxy(["--config-dir", str(empty)], logs / "proxy-empty.log") as p:
        p.wait_ready()
        time.sleep(1)
        results.put("base_rss_mib", round(proc_status(p.proc.pid, "VmRSS")))
