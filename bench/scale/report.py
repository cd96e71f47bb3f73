"""The before/after table of ``make bench-scale``: the issue's figures (measured on main) and the bars."""

from __future__ import annotations

from typing import Any

# key, what, before (issue 18, main), bar (None: reported only), unit
ROWS: tuple[tuple[str, str, str, float | None, str], ...] = (
    ("render_s", "graylane render of N routes: time", "40 s", 10, "s"),
    ("render_mib", "graylane render: peak RSS", "160 MiB", None, "MiB"),
    ("file_ready_s", "file mode: start to /readyz 200", "43.5 s", 10, "s"),
    ("file_ready_cpu_s", "file mode: CPU used until ready", "-", None, "s"),
    ("file_rss_mib", "file mode: RSS once ready", "245 MiB", 120, "MiB"),
    ("file_hwm_mib", "file mode: RSS high-water mark", "281 MiB", None, "MiB"),
    ("per_route_kib", "per route (RSS above the empty proxy)", "~24 KiB", None, "KiB"),
    ("kube_ready_s", "kube mode: start to /readyz 200 (list + watch)", "not measured", 10, "s"),
    ("kube_rss_mib", "kube mode: RSS once ready", "not measured", 120, "MiB"),
    ("decide_10_us", "decide at 10 routes", "not measured", None, "us"),
    ("decide_N_us", "decide at N routes", "not measured", None, "us"),
    ("file_change_p99_ms", "one route changed -> served, file mode p99", "whole-table rebuild", 100, "ms"),
    ("kube_change_p99_ms", "one route changed -> served, kube mode p99 (from the API write)",
     "whole-table rebuild", 100, "ms"),
    ("file_rejected", "one invalid document among N: rejected (count)", "-", None, ""),
    ("big_doc_load_s", "1 MiB document: written -> served", "-", None, "s"),
    ("burst_swaps", "1,000 rewrites of one file in ~1 s: swaps applied", "one rebuild each", None, ""),
    ("kube_burst_swaps", "1,000 PATCHes over 100 routes: swap batches", "one rebuild each", None, ""),
    ("kube_burst_coalesced", "... of which coalesced (replaced while waiting)", "-", None, ""),
    ("fanout_p99_ms", "fan-out: weight patch served by every proxy, p99", "-", 250, "ms"),
    ("fanout_follow_apiserver_cpu_pct", "fan-out: API server CPU while following (a patch / 0.5 s)", "-",
     None, "%"),
    ("fanout_list_apiserver_cpu_s", "fan-out: API server CPU for the proxies' initial lists", "-", None, "s"),
    ("fanout_apiserver_hwm_mib", "fan-out: API server peak RSS", "-", None, "MiB"),
    ("watch_event_bytes", "bytes one route update puts on each watch", "-", None, "B"),
)  # fmt: skip


def derived(values: dict[str, Any], routes: int) -> dict[str, Any]:
    out = dict(values)
    if "file_rss_mib" in values and "base_rss_mib" in values and routes:
        out["per_route_kib"] = round((values["file_rss_mib"] - values["base_rss_mib"]) * 1024 / routes, 1)
    return out


def met(values: dict[str, Any]) -> bool:
    """Every bar that was measured is met (time and size bars are upper bounds)."""
    return all(values[key] <= bar for key, _, _, bar, _ in ROWS if bar is not None and key in values)


def table(values: dict[str, Any], *, routes: int) -> str:
    values = derived(values, routes)
    lines = [f"\n| measure (N = {routes:,}) | before | after | bar |", "|---|---|---|---|"]
    for key, what, before, bar, unit in ROWS:
        if key not in values:
            continue
        after = f"{values[key]} {unit}".strip()
        verdict = "" if bar is None else f"<= {bar:g} {unit} {'met' if values[key] <= bar else 'MISSED'}"
        lines.append(f"| {what} | {before} | {after} | {verdict.strip()} |")
    return "\n".join(lines)
