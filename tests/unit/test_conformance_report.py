"""The summary ``make conformance`` prints from the suite's own report (tests/conformance/report.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conformance import report

REPORT = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "ConformanceReport", "date": "2026-12-03T20:00:00Z",
    "gatewayAPIVersion": "v1.6.3", "gatewayAPIChannel": "standard", "mode": "default",
    "implementation": {"organization": "graylane", "project": "graylane", "version": "0.1.0"},
    "profiles": [{
        "name": "GATEWAY-HTTP",
        "core": {"result": "failure", "statistics": {"Passed": 34, "Skipped": 0, "Failed": 2},
                 "failedTests": ["HTTPRouteHTTPSListener", "GatewayModifyListeners"]},
        "extended": {"result": "success", "statistics": {"Passed": 3, "Skipped": 40, "Failed": 0},
                     "supportedFeatures": ["HTTPRouteMethodMatching"]},
    }],
}  # fmt: skip


def test_summary_names_counts_and_failures(tmp_path: Path) -> None:
    path = tmp_path / "report.yaml"
    path.write_text(yaml.safe_dump(REPORT))
    found = report.load(path)
    assert report.summary(found) == [
        "Gateway API v1.6.3 (standard channel), mode default, graylane 0.1.0, 2026-12-03T20:00:00Z",
        "GATEWAY-HTTP: core failure -- 34 passed, 0 skipped, 2 failed",
        "  core failed: HTTPRouteHTTPSListener",
        "  core failed: GatewayModifyListeners",
        "  extended success -- 3 passed, 40 skipped, 0 failed; declared: HTTPRouteMethodMatching",
    ]
    assert not report.passed(found, "GATEWAY-HTTP")
    passed = {
        **REPORT,
        "profiles": [{"name": "GATEWAY-HTTP", "core": {"result": "success", "statistics": {"Passed": 36}}}],
    }
    assert report.passed(passed, "GATEWAY-HTTP") and not report.passed(passed, "GATEWAY-TLS")
    extended_failed = {"result": "failure", "statistics": {"Passed": 17, "Failed": 1}}
    profile = {**passed["profiles"][0], "extended": extended_failed}
    assert not report.passed({**REPORT, "profiles": [profile]}, "GATEWAY-HTTP"), "a declared feature failed"


def test_other_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kind: Something\n")
    with pytest.raises(ValueError, match="not a ConformanceReport"):
        report.load(path)
