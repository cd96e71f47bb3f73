"""The example Grafana dashboard only queries metrics the proxy really exports, with their real labels."""

from __future__ import annotations

import json
import re

from chart_render import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "graylane-dashboard.json"
METRIC = re.compile(r"\b(graylane_[a-z_]+)")
LABELS = {"route", "track", "code", "reason", "result", "le", "instance"}


def _exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_exported_metrics_only() -> None:
    exported = (ROOT / "proxy" / "metrics.py").read_text()
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in _exprs() for m in METRIC.findall(e)}
    assert used >= {
        "graylane_requests_total",
        "graylane_request_duration_seconds",
        "graylane_decisions_total",
        "graylane_upstream_errors_total",
        "graylane_mirror_total",
        "graylane_config_generation",
        "graylane_config_rejected_total",
        "graylane_jwt_rejected_total",
    }
    assert sorted(m for m in used if f'"{m}' not in exported) == []


def test_dashboard_groups_by_known_labels_only() -> None:
    for expr in _exprs():
        for group in re.findall(r"by \(([^)]*)\)", expr):
            assert {label.strip() for label in group.split(",")} <= LABELS, expr


def test_dashboard_is_importable_shape() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "route"}
