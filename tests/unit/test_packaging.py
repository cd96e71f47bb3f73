"""Every package folder is in pyproject's ``packages``: a folder left out is missing from the wheel and the
images built from it (the operator image failed to start that way once)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_packaged() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {package: ROOT / folder for package, folder in setuptools["package-dir"].items()}
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            folders[".".join([package, *relative.parts])] = init.parent
    listed = set(setuptools["packages"])
    assert set(folders) - listed == set(), "add them to [tool.setuptools] packages"
    assert listed - set(folders) == set(), "listed packages without a folder"
