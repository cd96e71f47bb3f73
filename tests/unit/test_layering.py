"""Layering that import-linter cannot see.

The shells live in proxy/ and operator/ (setuptools package-dir), outside the folder grimp walks for the
package `graylane`. The core-does-no-I/O contract is in pyproject.toml."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHELLS = {"graylane.proxy": REPO / "proxy", "graylane.operator": REPO / "operator"}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def imports_any(path: Path, prefixes: set[str]) -> list[str]:
    return sorted(m for m in imported_modules(path) if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize(
    "path", sorted((REPO / "graylane").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO))
)
def test_the_core_imports_no_shell(path: Path) -> None:
    assert imports_any(path, set(SHELLS)) == []


@pytest.mark.parametrize(
    ("shell", "other"), [("graylane.proxy", "graylane.operator"), ("graylane.operator", "graylane.proxy")]
)
def test_the_shells_do_not_import_each_other(shell: str, other: str) -> None:
    offenders = {str(p.relative_to(REPO)): imports_any(p, {other}) for p in SHELLS[shell].rglob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_checker_sees_an_offending_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from graylane.proxy.app import create_app\nimport graylane.operator.cli\n")
    assert imports_any(bad, set(SHELLS)) == [
        "graylane.operator.cli",
        "graylane.proxy.app",
        "graylane.proxy.app.create_app",
    ]
