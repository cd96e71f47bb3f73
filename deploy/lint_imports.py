"""Run import-linter over the whole ``graylane`` package, shells included (``make lint``).

grimp builds the import graph by walking the folder of the root package, but ``graylane.proxy`` and
``graylane.operator`` live in ``proxy/`` and ``operator/`` (setuptools ``package-dir``), not in
``graylane/``.
So the contracts in ``pyproject.toml`` run against a staging tree that lays the three folders out as one
package (``build/lint/graylane/{...,proxy/...,operator/...}``: real folders, each module a symlink to its
source) placed first on ``PYTHONPATH``. Nothing is copied or generated: the linted files are the sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "lint"
FOLDERS = {"graylane": ("graylane",), "proxy": ("graylane", "proxy"), "operator": ("graylane", "operator")}


def stage() -> Path:
    shutil.rmtree(STAGE, ignore_errors=True)
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            target = STAGE.joinpath(*package, path.relative_to(ROOT / folder))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return STAGE


def main() -> int:
    paths = [str(stage()), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    lint_imports = Path(sys.executable).with_name("lint-imports")
    command = [str(lint_imports), str(ROOT / "pyproject.toml"), *sys.argv[1:]]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
