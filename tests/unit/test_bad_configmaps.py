"""Every file in tests/bad_inputs/configmaps/ is a route document the proxy must reject (reliability.md §4.3).

File format: header lines ``# about: ...``, ``# expect: <field path>`` (empty = the document as a whole) and
``# seal: true|false`` (true: the checksum is recomputed first, so the intended problem is the one found),
then the document bytes exactly as a ConfigMap would carry them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graylane.config.document import ConfigError, canonical_json, load_route_document, seal

CASES = sorted((Path(__file__).parent.parent / "bad_inputs" / "configmaps").glob("*.txt"))


def read_case(path: Path) -> tuple[dict[str, str], bytes]:
    raw = path.read_bytes()
    header: dict[str, str] = {}
    while raw.startswith(b"# "):
        line, _, raw = raw.partition(b"\n")
        key, _, value = line[2:].decode().partition(":")
        header[key.strip()] = value.strip()
    return header, raw


def test_corpus_is_there() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_document_is_rejected_with_its_field_path(path: Path) -> None:
    header, body = read_case(path)
    assert {"about", "expect", "seal"} <= header.keys(), "every case states what it is and what to expect"
    if header["seal"] == "true":
        body = canonical_json(seal(json.loads(body))).encode()
    with pytest.raises(ConfigError) as caught:
        load_route_document(body)
    paths = [e.path for e in caught.value.errors]
    assert header["expect"] in paths, f"{path.name}: expected an error at {header['expect']!r}, got {paths}"
    assert all(e.message for e in caught.value.errors)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_message_stays_short_even_for_huge_input(path: Path) -> None:
    _, body = read_case(path)
    with pytest.raises(ConfigError) as caught:  # unsealed: at least the checksum fails
        load_route_document(body)
    assert len(str(caught.value)) < 4000
