"""Every file in tests/bad_inputs/ingress-nginx/ is a set of Ingresses the import must refuse, with a clear
error.

Header lines: ``# about:`` what is wrong, ``# subject:`` the object the error names (``Ingress ns/name``),
``# expect:`` the field path inside it, ``# message:`` words the message contains. The manifests follow.
The command on the same files (exit 1, nothing written) is tests/cli/test_import_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graylane.migrate.model import ImportOptions
from graylane.migrate.plan import import_ingresses

CASES = sorted((Path(__file__).parent.parent / "bad_inputs" / "ingress-nginx").glob("*.yaml"))


def read_case(path: Path) -> tuple[dict[str, str], list[dict[str, object]]]:
    text = path.read_text()
    header = {}
    for line in text.splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(":")
            header[key.strip()] = value.strip()
    return header, [d for d in yaml.safe_load_all(text) if d is not None]


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_ingresses_are_refused_with_the_field_path(path: Path) -> None:
    header, objects = read_case(path)
    assert {"about", "subject", "expect", "message"} <= header.keys(), "every case states what to expect"
    result = import_ingresses([(path.name, o) for o in objects], ImportOptions())
    errors = [f for f in result.findings if f.severity == "error"]
    assert not result.ok
    matching = [
        f
        for f in errors
        if f.subject.startswith(header["subject"])
        and f.path == header["expect"]
        and header["message"] in f.message
    ]
    assert matching, f"{path.name}: expected {header}, got {[str(e) for e in errors]}"
