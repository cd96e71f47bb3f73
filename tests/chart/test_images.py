"""Static checks of the Dockerfiles (they cannot be built on machines without Docker, such as CI here)."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml
from chart_render import CHART_DIR, ROOT

DOCKER_DIR = ROOT / "deploy" / "docker"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|clang|python3?-dev|libc6-dev)\b")


def _final_stage(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(starts) >= 2, "expected a build stage and a final stage"
    return lines[starts[-1] :]


@pytest.mark.parametrize("component", ["operator", "proxy"])
def test_image_is_slim_non_root_and_runs_the_entry_point(component: str) -> None:
    text = (DOCKER_DIR / f"Dockerfile.{component}").read_text()
    final = _final_stage(text)
    assert re.search(r"python:3\.\d+-slim", text), "slim Python base expected"
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    uid, gid = values["securityContext"]["runAsUser"], values["securityContext"]["runAsGroup"]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users == [f"{uid}:{gid}"], "the final stage must switch to the chart's numeric non-root user"
    assert not any(BUILD_TOOLS.search(line) for line in final), "no build tools in the final image"
    assert not any(line.upper().startswith("ADD ") for line in final)
    (entry,) = [line for line in final if line.upper().startswith("ENTRYPOINT ")]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(entry.split(" ", 1)[1]) == [f"graylane-{component}"]
    assert f"graylane-{component}" in scripts
    assert values[component]["image"]["repository"].endswith(f"/graylane-{component}")
