"""Fixtures for the chart tests: the real helm binary and rendered manifests per value scenario."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chart_render import ROOT, SCENARIOS, Manifests, render


@pytest.fixture(scope="session")
def chart_helm(request: pytest.FixtureRequest) -> Path:
    """The helm binary: $GRAYLANE_HELM, the suite's `helm_bin` fixture, or .graylane/bin/helm."""
    override = os.environ.get("GRAYLANE_HELM")
    if override:
        return Path(override)
    try:
        return Path(request.getfixturevalue("helm_bin"))
    except pytest.FixtureLookupError:
        pass
    local = ROOT / ".graylane" / "bin" / "helm"
    if local.is_file():
        return local
    pytest.fail("no helm binary: run `make tools` (installs .graylane/bin/helm) or set GRAYLANE_HELM")


@pytest.fixture(scope="session", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(chart_helm: Path, scenario: str, tmp_path_factory: pytest.TempPathFactory) -> Manifests:
    tmp = tmp_path_factory.mktemp(f"render-{scenario}")
    return Manifests(tuple(render(chart_helm, tmp, SCENARIOS[scenario])))
