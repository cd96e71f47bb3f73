"""``graylane import ingress-nginx``: canary Ingresses -> one commented YAML file of Upstreams and a
CanaryRoute per route.

```
graylane import ingress-nginx (-f FILE_OR_DIR [-f ...] | --from-cluster [-n NS | -A]) -o DIR
    [--sticky KEY] [--service-version SERVICE=VERSION ...] [--strict]
    [--ingress-class nginx] [--annotations-prefix nginx.ingress.kubernetes.io]
```
``-f -`` reads stdin. ``--from-cluster`` reads the Ingresses and Services through kubectl (``$KUBECTL``
or ``kubectl`` on ``PATH``; ``--kubeconfig``/``--context`` pass through), as the ``kubectl graylane``
plugin does. Findings go to stderr as ``error:``/``warning:``/``note:`` lines; the last line on stdout is
the summary. Any error (with ``--strict``, any warning): exit 1 and nothing written. The translation itself
is the pure :mod:`graylane.migrate`; this module only reads and writes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from graylane.cli.import_yaml import route_line, route_yaml
from graylane.cli.kubectl import Kubectl, PluginError, find_kubectl
from graylane.cli.manifests import InputError, list_items, load_manifests, write_atomically
from graylane.migrate.model import DEFAULT_PREFIX, ImportOptions, ImportResult
from graylane.migrate.plan import import_ingresses


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imports = sub.add_parser("import", help="migrate routes from another router")
    kinds = imports.add_subparsers(dest="router", required=True)
    nginx = kinds.add_parser(
        "ingress-nginx",
        help="canary Ingresses -> Upstreams + CanaryRoutes with the same behaviour",
        description="Pair each canary Ingress with its main Ingress and write one YAML file per route.",
    )
    _add_sources(nginx)
    _add_translation(nginx)
    nginx.set_defaults(run=run_import)


def _add_sources(nginx: argparse.ArgumentParser) -> None:
    given = nginx.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "-f", "--filename", action="append", type=Path, metavar="FILE_OR_DIR",
        help="Ingress (and Service) manifests; repeatable; directories recursively; - is stdin",
    )  # fmt: skip
    given.add_argument("--from-cluster", action="store_true", help="read the Ingresses through the API")
    nginx.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output directory")
    nginx.add_argument(
        "-n", "--namespace",
        help="files: namespace of objects without one (default: default); cluster: where to read",
    )  # fmt: skip
    nginx.add_argument("-A", "--all-namespaces", action="store_true", help="--from-cluster: every namespace")
    nginx.add_argument("--kubeconfig", help="--from-cluster: kubeconfig file")
    nginx.add_argument("--context", help="--from-cluster: kubeconfig context")


def _add_translation(nginx: argparse.ArgumentParser) -> None:
    nginx.add_argument(
        "--sticky", metavar="KEY",
        help="sticky split on KEY (header:X-User-Id, cookie:session, sourceIP); "
        "default: per-request random, as ingress-nginx",
    )  # fmt: skip
    nginx.add_argument(
        "--service-version", action="append", default=[], type=_assignment, metavar="[NS/]SERVICE=VERSION",
        help="Upstream metadata.version of a Service (default: from its name)",
    )  # fmt: skip
    nginx.add_argument("--ingress-class", default="nginx", help="import Ingresses of this class or none")
    nginx.add_argument("--annotations-prefix", default=DEFAULT_PREFIX, help="ingress-nginx's prefix")
    nginx.add_argument("--strict", action="store_true", help="treat every warning as an error")


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SERVICE=VERSION")
    return key, value


def run_import(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        objects = read_objects(args, environ=os.environ if environ is None else environ, err=err)
    except (InputError, PluginError, ValueError) as exc:
        print(f"graylane import: {exc}", file=err)
        return 1
    options = ImportOptions(
        sticky=args.sticky,
        versions=dict(args.service_version),
        ingress_class=args.ingress_class,
        annotation_prefix=args.annotations_prefix,
        default_namespace=args.namespace or "default",
        strict=args.strict,
    )
    result = import_ingresses(objects, options)
    for finding in result.findings:
        print(f"{finding.severity}: {finding}", file=err)
    if result.ok:
        write_result(result, args.output, out=out, sticky=args.sticky)
    print(summary(result, args.output), file=out)
    return 0 if result.ok else 1


def read_objects(
    args: argparse.Namespace, *, environ: Mapping[str, str], err: TextIO
) -> list[tuple[str, Any]]:
    if not args.from_cluster:
        return list(load_manifests(args.filename))
    kubectl = Kubectl(
        find_kubectl(environ), namespace=args.namespace, kubeconfig=args.kubeconfig, context=args.context
    )
    ingresses = _listed(kubectl, "ingresses.networking.k8s.io", all_namespaces=args.all_namespaces)
    try:  # the Services only resolve named ports: reading Ingresses must not need more than that
        services = _listed(kubectl, "services", all_namespaces=args.all_namespaces)
    except PluginError as exc:
        print(f"note: cannot list Services, so named ports cannot be resolved: {exc}", file=err)
        services = []
    return [("cluster", obj) for obj in [*ingresses, *services]]


def _listed(kubectl: Kubectl, resource: str, *, all_namespaces: bool) -> list[dict[str, Any]]:
    listing = json.loads(kubectl.run("get", resource, "-o", "json", all_namespaces=all_namespaces))
    return [obj for obj in list_items(listing) if isinstance(obj, dict)]


def write_result(result: ImportResult, output: Path, *, out: TextIO, sticky: str | None) -> None:
    output.mkdir(parents=True, exist_ok=True)
    for route in result.routes:
        write_atomically(output / route.filename, route_yaml(route))
        print(f"wrote {output / route.filename}: {route_line(route, sticky=sticky)}", file=out)


def summary(result: ImportResult, output: Path) -> str:
    counts = ", ".join(_plural(result.count(severity), severity) for severity in ("warning", "error", "note"))
    if not result.ok:
        return f"summary: nothing written ({_plural(len(result.routes), 'route')} ready), {counts}"
    return f"summary: {_plural(len(result.routes), 'route')} written to {output}, {counts}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
