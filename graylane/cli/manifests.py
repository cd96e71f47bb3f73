"""Reading manifests for the ``graylane`` commands: files, directories (recursively) and ``-`` for stdin;
multi-document YAML and ``kind: List`` / ``*List`` documents; atomic writes of the results."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = Path("-")
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML was built with it


class InputError(Exception):
    """Unreadable or malformed manifests; the message names the file."""


def load_manifests(sources: Sequence[Path], *, stdin: TextIO | None = None) -> Iterator[tuple[str, Any]]:
    """``(where, object)`` for every object in ``sources``; ``where`` names the file and document."""
    for path in manifest_files(sources):
        label = "<stdin>" if path == STDIN else str(path)
        try:
            text = (stdin or sys.stdin).read() if path == STDIN else path.read_text(encoding="utf-8")
            docs = _documents(text, json_first=path.suffix == ".json")
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"{label}: cannot read manifests: {exc}") from None
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{label} (document {index + 1})"
            for obj in list_items(doc):
                if not isinstance(obj, dict):
                    raise InputError(f"{where}: a manifest must be a mapping")
                yield where, obj


def _documents(text: str, *, json_first: bool) -> list[Any]:
    """A ``.json`` file is read as JSON at C speed (as YAML when it is not plain JSON); YAML may hold several
    documents."""
    if json_first:
        try:
            return [json.loads(text)]
        except json.JSONDecodeError:
            pass
    return list(yaml.load_all(text, Loader=YAML_LOADER))


def list_items(doc: Any) -> list[Any]:
    """The items of a ``List`` (``kubectl get -o yaml``) or ``<Kind>List`` document (whose items the API
    sends without ``kind`` and ``apiVersion``: they are filled in), else the document itself."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if not (isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)):
        return [doc]
    if kind == "List":
        return list(doc["items"])
    implied = {"kind": kind.removesuffix("List"), "apiVersion": doc.get("apiVersion")}
    return [{**implied, **item} if isinstance(item, dict) else item for item in doc["items"]]


def manifest_files(sources: Sequence[Path]) -> Iterator[Path]:
    for source in sources:
        if source == STDIN:
            yield source
        elif source.is_dir():
            yield from sorted(p for p in source.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        elif source.exists():
            yield source
        else:
            raise InputError(f"{source}: no such file or directory")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path`` (this process's), then rename it over ``path``:
    a reader sees the old file or the new one, never a part (``graylane render`` writes 10,000 of them)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
