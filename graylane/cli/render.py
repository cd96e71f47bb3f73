"""The ``graylane`` command: ``graylane render -f FILE_OR_DIR [-f ...] -o DIR``.

``render`` compiles CanaryRoutes and Upstreams from manifests offline, exactly as the operator does, and
writes one ``<namespace>.<route>.json`` per CanaryRoute (the ConfigMap's ``route.json``).
Any invalid input: exit 1, a message naming the file, the resource and the field path, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from graylane.compile.route import CompileError, compile_route
from graylane.config.document import canonical_json

GROUP = "graylane.io/"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class InputError(Exception):
    """Unreadable or malformed manifests; the message names the file."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graylane", description="Graylane command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="compile CanaryRoutes + Upstreams offline into route documents")
    render.add_argument(
        "-f", "--filename", action="append", required=True, type=Path, metavar="FILE_OR_DIR",
        help="manifest file or directory (repeatable; directories are read recursively)",
    )  # fmt: skip
    render.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output directory")
    render.add_argument("-n", "--namespace", default="default", help="namespace for objects without one")
    args = parser.parse_args(argv)
    return run_render(args.filename, args.output, default_namespace=args.namespace)


def run_render(sources: Sequence[Path], output: Path, *, default_namespace: str) -> int:
    try:
        objects = list(_load_objects(sources, default_namespace))
        documents = render_documents(objects)
    except InputError as exc:
        print(f"graylane render: {exc}", file=sys.stderr)
        return 1
    output.mkdir(parents=True, exist_ok=True)
    for filename, text in documents.items():
        _write_atomically(output / filename, text)
        print(f"wrote {output / filename}")
    return 0


def render_documents(objects: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """``(source, object)`` pairs -> ``{"<ns>.<route>.json": canonical JSON}``; raises :class:`InputError`."""
    upstreams: dict[str, dict[str, dict[str, Any]]] = {}
    routes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for source, obj in objects:
        kind, meta = obj.get("kind"), obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "Upstream":
            upstreams.setdefault(key[0], {})[key[1]] = obj
        elif kind == "CanaryRoute":
            if key in routes:
                raise InputError(f"{source}: CanaryRoute {key[0]}/{key[1]} is defined twice")
            routes[key] = (source, obj)
    problems: list[str] = []
    out: dict[str, str] = {}
    for (namespace, name), (source, obj) in sorted(routes.items()):
        try:
            doc = compile_route(obj, upstreams.get(namespace, {}))
        except CompileError as exc:
            problems += [f"{source}: CanaryRoute {namespace}/{name}: {e}" for e in exc.errors]
            continue
        out[f"{namespace}.{name}.json"] = canonical_json(doc) + "\n"
    if problems:
        raise InputError("invalid input:\n  " + "\n  ".join(problems))
    return out


def _load_objects(sources: Sequence[Path], default_namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in _manifest_files(sources):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read manifests: {exc}") from None
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{path} (document {index + 1})"
            for obj in doc.get("items", []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]:
                checked = _graylane_object(obj, where, default_namespace)
                if checked is not None:
                    yield where, checked


def _graylane_object(obj: Any, where: str, default_namespace: str) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a manifest must be a mapping")
    if not str(obj.get("apiVersion", "")).startswith(GROUP):
        return None  # Services, Deployments, ... are not ours to compile
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InputError(f"{where}: metadata.name: required")
    if not isinstance(obj.get("spec"), dict):
        raise InputError(f"{where}: {obj.get('kind')} {meta['name']}: spec: required, must be a mapping")
    meta = {**meta, "namespace": meta.get("namespace") or default_namespace}
    return {**obj, "metadata": meta}


def _manifest_files(sources: Sequence[Path]) -> Iterator[Path]:
    for source in sources:
        if source.is_dir():
            yield from sorted(p for p in source.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        elif source.exists():
            yield source
        else:
            raise InputError(f"{source}: no such file or directory")


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
