"""Generate N CanaryRoutes of a realistic shape, with 2 Upstreams each (``make bench-scale`` input).

Every route has two rules (a QA header; an office CIDR, a beta group list or a User-Agent regex), sticky keys,
``versionRouting`` over its own Upstreams and a weight (the issue's shape); a quarter of them also set a
feature-flag request header per track. The hosts mix what a
large platform has:

* most routes: their own host ``svc-<i>.example.com``, prefix ``/``;
* every 5th route: the shared host ``api.example.com`` with its own prefix ``/svc-<i>`` (N/5 prefixes on
  one host: what a trie or a sorted structure must keep cheap);
* every 10th (offset 1): also a wildcard ``*.svc-<i>.apps.example.com``;
* every 50th (offset 3): any host (``hosts: []``) under ``/any/svc-<i>``.

The first 500 routes share one canary Upstream (``shared-canary``), the "Upstream shared by 500 routes" of
the issue; the others have their own ``svc-<i>-v2``. All objects are plain dicts as the API server returns
them (``namespace`` set, no ``uid``), in one namespace unless ``namespaces`` > 1.

    python bench/scale/generate.py --routes 10000 -o objects.json      # a kubectl List
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

API = "graylane.io/v1alpha1"
SHARED = "shared-canary"
SHARED_ROUTES = 500
OFFICE = ["203.0.113.0/24", "2001:db8::/32"]


def namespace_of(i: int, *, base: str, namespaces: int) -> str:
    return base if namespaces <= 1 else f"{base}-{i % namespaces}"


def upstream(name: str, namespace: str, app: str, version: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "Upstream",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app": app, "team": f"team-{hash_team(app)}"}},
        "spec": {"service": {"name": name, "port": port}, "metadata": {"version": version, "region": "eu"},
                 "timeoutSeconds": 30, "maxConnections": 256},
    }  # fmt: skip


def hash_team(app: str) -> int:
    return sum(app.encode()) % 40


def second_rule(i: int) -> dict[str, Any]:
    if i % 10 == 7:
        match: dict[str, Any] = {"headers": [{"name": "User-Agent", "regex": ".*(Android|iPhone).*"}]}
        return {"name": "mobile", "to": "canary", "match": match}
    if i % 2 == 0:
        return {"name": "office", "to": "canary", "match": {"sourceCIDRs": OFFICE}}
    return {
        "name": "beta",
        "to": "canary",
        "match": {"headers": [{"name": "X-Group", "in": ["beta", "staff"]}]},
    }


def hosts_and_prefix(i: int) -> tuple[list[str], str]:
    if i % 50 == 3:
        return [], f"/any/svc-{i}"
    if i % 5 == 0:
        return ["api.example.com"], f"/svc-{i}"
    if i % 10 == 1:
        return [f"svc-{i}.example.com", f"*.svc-{i}.apps.example.com"], "/"
    return [f"svc-{i}.example.com"], "/"


def route(i: int, namespace: str) -> dict[str, Any]:
    app = f"svc-{i}"
    hosts, prefix = hosts_and_prefix(i)
    weight: float = i % 101
    if i % 7 == 0 and weight < 100:
        weight += 0.25
    spec = {
        "hosts": hosts, "pathPrefix": prefix,
        "stable": f"{app}-v1", "canary": SHARED if i < SHARED_ROUTES else f"{app}-v2",
        "rules": [{"name": "qa", "to": "canary",
                   "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}},
                  second_rule(i)],
        "versionRouting": {"header": "X-Version", "metadataKey": "version",
                           "upstreamSelector": {"matchLabels": {"app": app}}},
        "weight": weight,
        "sticky": {"keys": ["header:X-User-Id", "cookie:session", "sourceIP"]},
    }  # fmt: skip
    if i % 4 == 0:  # a feature flag per track on a quarter of the routes
        spec["requestHeaders"] = {"canary": {"set": {f"X-Feature-{app}": "on"}},
                                  "stable": {"set": {f"X-Feature-{app}": "off"}}}  # fmt: skip
    return {"apiVersion": API, "kind": "CanaryRoute", "metadata": {"name": app, "namespace": namespace},
            "spec": spec}  # fmt: skip


def objects(count: int, *, base: str = "scale", namespaces: int = 1) -> Iterator[dict[str, Any]]:
    """Upstreams first (the shared one first of all), then the routes."""
    spaces = sorted(
        {namespace_of(i, base=base, namespaces=namespaces) for i in range(min(count, SHARED_ROUTES))}
    )
    for ns in spaces:
        yield upstream(SHARED, ns, "shared", "v2", 8081)
    for i in range(count):
        ns = namespace_of(i, base=base, namespaces=namespaces)
        app = f"svc-{i}"
        yield upstream(f"{app}-v1", ns, app, "v1", 8080)
        if i >= SHARED_ROUTES:
            yield upstream(f"{app}-v2", ns, app, "v2", 8081)
    for i in range(count):
        yield route(i, namespace_of(i, base=base, namespaces=namespaces))


def write_list(path: Path, count: int, *, base: str = "scale", namespaces: int = 1) -> int:
    items = list(objects(count, base=base, namespaces=namespaces))
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return len(items)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--namespace", default="scale")
    parser.add_argument(
        "--namespaces", type=int, default=1, help="spread the routes over this many namespaces"
    )
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    written = write_list(args.output, args.routes, base=args.namespace, namespaces=args.namespaces)
    print(f"wrote {written} objects to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
