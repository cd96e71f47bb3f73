"""The conformance suite's own report (``--report-output``), summarised per profile."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or data.get("kind") != "ConformanceReport":
        raise ValueError(f"{path} is not a ConformanceReport")
    return data


def _counts(status: Mapping[str, Any]) -> tuple[int, int, int]:
    stats = status.get("statistics") or {}
    return int(stats.get("Passed", 0)), int(stats.get("Skipped", 0)), int(stats.get("Failed", 0))


def summary(report: Mapping[str, Any]) -> list[str]:
    """Lines: the release and mode, then per profile the core and extended results with their counts, the
    failed tests and the extended features declared."""
    impl = report.get("implementation") or {}
    lines = [
        f"Gateway API {report.get('gatewayAPIVersion')} ({report.get('gatewayAPIChannel')} channel), "
        f"mode {report.get('mode')}, {impl.get('project')} {impl.get('version')}, {report.get('date')}"
    ]
    for profile in report.get("profiles") or []:
        core = profile.get("core") or {}
        passed, skipped, failed = _counts(core)
        lines.append(f"{profile.get('name')}: core {core.get('result')} -- "
                     f"{passed} passed, {skipped} skipped, {failed} failed")  # fmt: skip
        lines += [f"  core failed: {name}" for name in core.get("failedTests") or []]
        lines += [f"  core skipped: {name}" for name in core.get("skippedTests") or []]
        extended = profile.get("extended")
        if extended:
            passed, skipped, failed = _counts(extended)
            declared = ", ".join(extended.get("supportedFeatures") or []) or "none"
            lines.append(f"  extended {extended.get('result')} -- {passed} passed, {skipped} skipped, "
                         f"{failed} failed; declared: {declared}")  # fmt: skip
            lines += [f"  extended failed: {name}" for name in extended.get("failedTests") or []]
    return lines


def passed(report: Mapping[str, Any], profile: str) -> bool:
    """The profile's core tests passed, and none of the extended tests of the declared features failed."""
    for item in report.get("profiles") or []:
        if item.get("name") == profile:
            core, extended = item.get("core") or {}, item.get("extended") or {}
            return core.get("result") == "success" and _counts(core)[2] == 0 and _counts(extended)[2] == 0
    return False
