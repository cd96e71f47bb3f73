"""``graylane render -f FILE_OR_DIR [-f ...] -o DIR``.

``render`` compiles CanaryRoutes and Upstreams from manifests offline, exactly as the operator does, and
writes one ``<namespace>.<route>.json`` per CanaryRoute (the ConfigMap's ``route.json``).
Any invalid input: exit 1, a message naming the file, the resource and the field path, and nothing written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from graylane.cli.manifests import InputError, load_manifests, write_atomically
from graylane.compile.route import CompileError, compile_document
from graylane.compile.upstreams import UpstreamIndex, relevant_upstreams

GROUP = "graylane.io/"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = sub.add_parser("render", help="compile CanaryRoutes + Upstreams offline into route documents")
    render.add_argument(
        "-f", "--filename", action="append", required=True, type=Path, metavar="FILE_OR_DIR",
        help="manifest file or directory (repeatable; directories are read recursively; - is stdin)",
    )  # fmt: skip
    render.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output directory")
    render.add_argument("-n", "--namespace", default="default", help="namespace for objects without one")
    render.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    return run_render(args.filename, args.output, default_namespace=args.namespace)


def run_render(sources: Sequence[Path], output: Path, *, default_namespace: str) -> int:
    try:
        objects = list(_load_objects(sources, default_namespace))
        documents = render_documents(objects)
    except InputError as exc:
        print(f"graylane render: {exc}", file=sys.stderr)
        return 1
    output.mkdir(parents=True, exist_ok=True)
    lines = []
    for filename, text in documents.items():
        write_atomically(output / filename, text)
        lines.append(f"wrote {output / filename}\n")
    sys.stdout.write("".join(lines))  # one write: an unbuffered stdout costs a system call per line
    return 0


def render_documents(objects: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """``(source, object)`` pairs -> ``{"<ns>.<route>.json": canonical JSON}``; raises :class:`InputError`."""
    upstreams: dict[str, UpstreamIndex] = {}
    routes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for source, obj in objects:
        kind, meta = obj.get("kind"), obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "Upstream":
            upstreams.setdefault(key[0], UpstreamIndex()).put(key[1], obj)
        elif kind == "CanaryRoute":
            if key in routes:
                raise InputError(f"{source}: CanaryRoute {key[0]}/{key[1]} is defined twice")
            routes[key] = (source, obj)
    problems: list[str] = []
    out: dict[str, str] = {}
    for (namespace, name), (source, obj) in sorted(routes.items()):
        try:
            found = relevant_upstreams(obj["spec"], upstreams.get(namespace) or UpstreamIndex())
            _, text = compile_document(obj, found)
        except CompileError as exc:
            problems += [f"{source}: CanaryRoute {namespace}/{name}: {e}" for e in exc.errors]
            continue
        out[f"{namespace}.{name}.json"] = text + "\n"
    if problems:
        raise InputError("invalid input:\n  " + "\n  ".join(problems))
    return out


def _load_objects(sources: Sequence[Path], default_namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, obj in load_manifests(sources):
        checked = _graylane_object(obj, where, default_namespace)
        if checked is not None:
            yield where, checked


def _graylane_object(obj: dict[str, Any], where: str, default_namespace: str) -> dict[str, Any] | None:
    if not str(obj.get("apiVersion", "")).startswith(GROUP):
        return None  # Services, Deployments, ... are not ours to compile
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InputError(f"{where}: metadata.name: required")
    if not isinstance(obj.get("spec"), dict):
        raise InputError(f"{where}: {obj.get('kind')} {meta['name']}: spec: required, must be a mapping")
    meta = {**meta, "namespace": meta.get("namespace") or default_namespace}
    return {**obj, "metadata": meta}
