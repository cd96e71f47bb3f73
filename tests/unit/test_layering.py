"""Layering that import-linter cannot see.

The layers themselves are import-linter contracts in pyproject.toml, run by ``make lint`` over the staging
tree of deploy/lint_imports.py. What an import graph does not show is checked here: that the staging tree
holds every module of the three folders (else a new folder would be linted by nobody), and that the pure
core reaches no I/O through builtins or imports by string."""

from __future__ import annotations

import ast
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE_WITH_IO = {"cli"}  # graylane/cli/: the commands, allowed I/O (the import-linter contracts say so too)
IO_BUILTINS = {"open", "print", "input", "__import__", "exec", "eval", "breakpoint"}


def _lint_imports_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("lint_imports", REPO / "deploy" / "lint_imports.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["lint_imports"] = module
    spec.loader.exec_module(module)
    return module


def pure_core_modules() -> list[Path]:
    return sorted(
        p
        for p in (REPO / "graylane").rglob("*.py")
        if p.relative_to(REPO / "graylane").parts[0] not in CORE_WITH_IO
    )


def io_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_BUILTINS:
            found.append(f"{node.func.id}() at line {node.lineno}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.extend(f"import {n} at line {node.lineno}" for n in names if n.split(".")[0] == "importlib")
    return found


@pytest.mark.parametrize("path", pure_core_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_pure_core_calls_no_io_builtin_and_imports_nothing_by_string(path: Path) -> None:
    assert io_calls(path) == []


def test_the_checker_sees_io_builtins_and_string_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import importlib\nprint(open('x').read())\n")
    assert io_calls(bad) == ["import importlib at line 1", "print() at line 2", "open() at line 2"]


def test_import_linter_sees_every_module_of_every_package() -> None:
    lint_imports = _lint_imports_module()
    stage = lint_imports.stage()
    staged = {p.relative_to(stage).as_posix() for p in stage.rglob("*.py")}
    package_dir = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    expected = {
        "/".join([*package.split("."), p.relative_to(REPO / folder).as_posix()])
        for package, folder in package_dir.items()
        for p in (REPO / folder).rglob("*.py")
    }
    assert staged == expected
    assert set(lint_imports.FOLDERS) == set(package_dir.values())


def test_the_unit_tier_tests_only_the_core() -> None:
    """``make test-unit`` promises the fast pure-core tier: the shells, the commands and the test cluster are
    tested in tests/proxy, tests/operator, tests/cli and tests/cluster."""
    shells = ("graylane.proxy", "graylane.operator", "graylane.cli", "cluster", "upstream_app", "kopfharness")
    offenders = {}
    for path in sorted((REPO / "tests" / "unit").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            bad = [n for n in names if any(n == s or n.startswith(s + ".") for s in shells)]
            if bad:
                offenders.setdefault(path.name, []).extend(bad)
    assert offenders == {}
