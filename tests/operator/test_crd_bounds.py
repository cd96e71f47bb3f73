"""Static lint of deploy/crds/: every string, list and map in the schemas is bounded, the API surface is as
documented (names, categories, short names, printer columns, status subresource). No cluster needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "crds").glob("*.graylane.io.yaml"))
FREE_FORM = {"metadata"}  # the object's own metadata is validated by the API server


def walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        if path.count(".") == 0 and name in FREE_FORM:
            continue
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def schema_of(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("crd", CRDS, ids=[p.name for p in CRDS])
def test_every_string_list_and_map_is_bounded(crd: Path) -> None:
    unbounded = []
    for where, node in walk(schema_of(crd), "root"):
        kind = node.get("type")
        bounded_string = "maxLength" in node or "enum" in node or node.get("format") in ("date-time", "date")
        if kind == "string" and not bounded_string and where.count(".") > 1:
            unbounded.append(f"{where}: string without maxLength")
        if kind == "array" and "maxItems" not in node:
            unbounded.append(f"{where}: list without maxItems")
        if kind == "object" and "additionalProperties" in node and "maxProperties" not in node:
            unbounded.append(f"{where}: map without maxProperties")
    assert not unbounded


def test_names_columns_and_status() -> None:
    docs = {p.name: yaml.safe_load(p.read_text()) for p in CRDS}
    route = docs["canaryroutes.graylane.io.yaml"]["spec"]
    ups = docs["upstreams.graylane.io.yaml"]["spec"]
    assert route["names"]["shortNames"] == ["croute"] and ups["names"]["shortNames"] == ["ups"]
    assert route["names"]["categories"] == ["graylane"] == ups["names"]["categories"]
    for spec in (route, ups):
        version = spec["versions"][0]
        assert spec["scope"] == "Namespaced" and version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
    columns = dict((c["name"], c["jsonPath"]) for c in route["versions"][0]["additionalPrinterColumns"])
    expected = {"Stable": ".spec.stable", "Canary": ".spec.canary", "Weight": ".status.canaryWeight",
                "Phase": ".status.phase", "Age": ".metadata.creationTimestamp"}  # fmt: skip
    assert columns.items() >= expected.items()
    assert list(columns)[:4] == ["Stable", "Canary", "Weight", "Phase"] and list(columns)[-1] == "Age"
    assert [c["name"] for c in ups["versions"][0]["additionalPrinterColumns"]] == [
        "Target",
        "Metadata",
        "Age",
    ]
