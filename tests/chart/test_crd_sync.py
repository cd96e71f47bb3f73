"""The chart's crds/ are byte-identical copies of deploy/crds/ (the one source), and the sync script works."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from chart_render import ROOT


def _sync_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("graylane_sync_crds", ROOT / "deploy" / "sync_crds.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_chart_crds_match_deploy_crds() -> None:
    drift = _sync_module().find_drift()
    assert drift.clean, drift.describe() + "\nrun `make chart-sync`"


def test_sync_reports_and_repairs_drift(tmp_path: Path) -> None:
    sync = _sync_module()
    source, chart = tmp_path / "src", tmp_path / "chart"
    source.mkdir()
    chart.mkdir()
    (source / "a.yaml").write_text("kind: A\n")
    (source / "b.yaml").write_text("kind: B\n")
    (chart / "b.yaml").write_text("kind: B-old\n")
    (chart / "gone.yaml").write_text("kind: Gone\n")
    (chart / "kopf.dev_peerings.yaml").write_text("kind: Kopf\n")
    drift = sync.find_drift(source=source, chart=chart)
    assert (drift.missing, drift.changed, drift.extra) == (("a.yaml",), ("b.yaml",), ("gone.yaml",))
    sync.sync(source=source, chart=chart)
    assert sync.find_drift(source=source, chart=chart).clean
    assert sorted(p.name for p in chart.iterdir()) == ["a.yaml", "b.yaml", "kopf.dev_peerings.yaml"]
    assert (chart / "b.yaml").read_text() == "kind: B\n"
