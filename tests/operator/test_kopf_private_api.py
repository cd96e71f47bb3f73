"""operator/kubeapi.py sends its few API calls through Kopf's own client (one login, one connection pool),
which Kopf keeps in a private module. pyproject.toml pins the Kopf releases this was tested with; these tests
say plainly what moved when a Kopf release breaks it."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ADVICE = "operator/kubeapi.py uses it: adapt kubeapi.py, then widen the kopf pin in pyproject.toml"


def kopf_requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"kopf\b", d)]
    return Requirement(spec)


def test_kopf_is_pinned_to_a_tested_range_and_the_installed_one_is_in_it() -> None:
    requirement = kopf_requirement()
    assert any(s.operator in ("<", "<=", "~=", "==") for s in requirement.specifier), (
        f"{requirement}: no upper bound, but kubeapi.py relies on Kopf's private client"
    )
    installed = Version(importlib.metadata.version("kopf"))
    assert installed in requirement.specifier, f"kopf {installed} is outside the tested range {requirement}"


def test_kopf_still_has_the_private_client_kubeapi_uses() -> None:
    version = importlib.metadata.version("kopf")
    try:
        from kopf._cogs.clients import api, errors
    except ImportError as exc:
        raise AssertionError(f"kopf {version} no longer has kopf._cogs.clients ({exc}); {ADVICE}") from None
    expected = {"method", "url", "payload", "headers", "settings", "logger"}
    missing = expected - set(inspect.signature(api.request).parameters)
    assert not missing, f"kopf {version}: kopf._cogs.clients.api.request lost {sorted(missing)}; {ADVICE}"
    watch = {"url", "settings", "timeout", "logger"} - set(inspect.signature(api.stream).parameters)
    assert not watch, f"kopf {version}: kopf._cogs.clients.api.stream lost {sorted(watch)}; {ADVICE}"
    names = ("APIError", "APINotFoundError", "APIConflictError")
    gone = [name for name in names if not hasattr(errors, name)]
    assert not gone, f"kopf {version}: kopf._cogs.clients.errors lost {gone}; {ADVICE}"
