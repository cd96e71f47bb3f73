"""Pairs -> CanaryRoutes and Upstreams (plain dicts, as ``kubectl apply`` and ``graylane render`` take them).

Pairs of the same main and canary Ingress, path and Services become one route whose ``hosts`` lists their
hosts (a no-host rule, ingress-nginx's default server, becomes a route with ``hosts: []``). Every route is
compiled with :func:`graylane.compile.route.compile_route` before it is returned, so what the import writes
is what the operator accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graylane.compile.route import CompileError, compile_route
from graylane.migrate import canary as canary_rules
from graylane.migrate.model import Finding, ImportedRoute, ImportOptions, Ingress, ServicePorts
from graylane.migrate.names import path_slug, route_names, service_version, upstream_names
from graylane.migrate.pairing import Pair
from graylane.migrate.paths import covers, path_prefix
from graylane.migrate.tls import tls_mapping

API_VERSION = "graylane.io/v1alpha1"
IMPORTED_FROM = "graylane.io/imported-from"
Target = tuple[str, str, int]  # namespace, Service, port


@dataclass(frozen=True, slots=True)
class Draft:
    pair: Pair  # the first pair of the group; the others differ by host only
    members: tuple[Pair, ...]
    hosts: tuple[str, ...]
    prefix: str
    stable: Target
    canary: Target
    findings: tuple[Finding, ...]


def group_pairs(pairs: Sequence[Pair]) -> list[tuple[Pair, ...]]:
    """Pairs that differ by host only, together (one route with several hosts)."""
    groups: dict[tuple[Any, ...], list[Pair]] = {}
    for p in pairs:
        key = (p.main.key, p.canary.key, p.main_path.path, p.main_path.path_type,
               p.main_path.backend, p.canary_path.backend, p.main_path.host == "")  # fmt: skip
        groups.setdefault(key, []).append(p)
    return [tuple(members) for members in groups.values()]


def draft(
    members: tuple[Pair, ...],
    *,
    mains: Sequence[Ingress],
    services: Mapping[tuple[str, str], ServicePorts],
    options: ImportOptions,
) -> tuple[Draft | None, list[Finding]]:
    pair = members[0]
    hosts = tuple(dict.fromkeys(m.main_path.host for m in members if m.main_path.host))
    prefix, findings = path_prefix(pair.main, pair.main_path, hosts, mains, prefix=options.annotation_prefix)
    stable = _target(pair.main, pair.main_path.where, pair.main_path.backend, services, findings)
    canary = _target(pair.canary, pair.canary_path.where, pair.canary_path.backend, services, findings)
    if prefix is None or stable is None or canary is None or any(f.severity == "error" for f in findings):
        return None, findings
    return Draft(pair, members, hosts, prefix, stable, canary, tuple(findings)), []


def _target(
    ingress: Ingress,
    where: str,
    backend: Any,
    services: Mapping[tuple[str, str], ServicePorts],
    findings: list[Finding],
) -> Target | None:
    if isinstance(backend.port, int):
        return (ingress.namespace, backend.service, backend.port)
    known = services.get((ingress.namespace, backend.service))
    port = known.ports.get(backend.port) if known else None
    if port is None:
        seen = "its Service has no such port" if known else "its Service is not in the input"
        message = (
            f"named port {backend.port!r}: {seen}; include the Service manifest (or use --from-cluster) "
            "so the port number can be read"
        )
        findings.append(Finding("error", ingress.subject, f"{where}.backend.service.port.name", message))
        return None
    return (ingress.namespace, backend.service, port)


def build(
    drafts: Sequence[Draft], *, all_paths: Sequence[tuple[Ingress, Any]], options: ImportOptions
) -> tuple[list[ImportedRoute], list[Finding]]:
    upstreams = upstream_names(t for d in drafts for t in (d.stable, d.canary))
    names = route_names([(d.pair.main.namespace, d.pair.main.name, path_slug(d.prefix)) for d in drafts])
    routes: list[ImportedRoute] = []
    findings: list[Finding] = []
    for d, name in zip(drafts, names, strict=True):
        route, problems = _route(d, name, upstreams, drafts=drafts, all_paths=all_paths, options=options)
        findings += problems
        if route is not None:
            routes.append(route)
    return routes, findings


def _route(
    d: Draft,
    name: str,
    upstreams: Mapping[Target, str],
    *,
    drafts: Sequence[Draft],
    all_paths: Sequence[tuple[Ingress, Any]],
    options: ImportOptions,
) -> tuple[ImportedRoute | None, list[Finding]]:
    namespace, prefix = d.pair.main.namespace, options.annotation_prefix
    tls, tls_findings = tls_mapping([d.pair.main, d.pair.canary], d.hosts, prefix=prefix)
    findings = [*d.findings, *tls_findings, *_shadowed(d, name, drafts, all_paths)]
    objects = {upstreams[t]: _upstream(t, upstreams[t], options) for t in (d.stable, d.canary)}
    route = _canary_route(d, name, objects, tls, options)
    try:
        compile_route(route, objects)
    except CompileError as exc:
        subject = f"CanaryRoute {namespace}/{name}"
        return None, [*findings, *(Finding("error", subject, e.path, e.message) for e in exc.errors)]
    explanation = _explain(d, name, objects, options)
    origins = tuple(dict.fromkeys(
        (ingress.subject, path.where) for m in d.members
        for ingress, path in ((m.main, m.main_path), (m.canary, m.canary_path))
    ))  # fmt: skip
    return ImportedRoute(namespace, name, tuple(objects.values()), route, explanation, origins), findings


def _upstream(target: Target, name: str, options: ImportOptions) -> dict[str, Any]:
    namespace, service, port = target
    return {
        "apiVersion": API_VERSION,
        "kind": "Upstream",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "service": {"name": service, "port": port},
            "metadata": {"version": service_version(namespace, service, options.versions)},
        },
    }


def _canary_route(
    d: Draft, name: str, objects: Mapping[str, Any], tls: Mapping[str, Any] | None, options: ImportOptions
) -> dict[str, Any]:
    stable, canary = list(objects)
    spec: dict[str, Any] = {
        "hosts": list(d.hosts),
        "pathPrefix": d.prefix,
        "stable": stable,
        "canary": canary,
    }
    rules = canary_rules.policy_rules(d.pair.policy)
    if rules:
        spec["rules"] = rules
    spec["weight"] = canary_rules.weight_value(d.pair.policy.weight)
    if options.sticky:
        spec["sticky"] = {"keys": [options.sticky]}
    if tls is not None:
        spec["tls"] = dict(tls)
    origin = f"ingress-nginx: main {d.pair.main.key}, canary {d.pair.canary.key}"
    meta = {"name": name, "namespace": d.pair.main.namespace, "annotations": {IMPORTED_FROM: origin}}
    return {"apiVersion": API_VERSION, "kind": "CanaryRoute", "metadata": meta, "spec": spec}


def _shadowed(
    d: Draft, name: str, drafts: Sequence[Draft], all_paths: Sequence[tuple[Ingress, Any]]
) -> list[Finding]:
    """Paths of other Ingresses this route would take over in Graylane although they were not imported:
    deeper paths under its prefix on its hosts, and (for ``hosts: []``) hosts served elsewhere."""
    imported = {(h, x.prefix) for x in drafts for h in (x.hosts or ("",))}
    out: list[Finding] = []
    for ingress, path in all_paths:
        normal = path.path.rstrip("/") or "/"
        if (path.host, normal) in imported:
            continue
        same_host = path.host in d.hosts if d.hosts else not path.host
        if same_host and normal != d.prefix and covers(d.prefix, normal) and len(normal) > len(d.prefix):
            where = "any host" if not path.host else path.host
            message = (
                f"{where} path {path.path} ({ingress.subject}) lies under pathPrefix {d.prefix} and is not "
                "imported: requests for it that reach Graylane follow this route's rules and split"
            )
            out.append(
                Finding("warning", f"CanaryRoute {d.pair.main.namespace}/{name}", "spec.pathPrefix", message)
            )
        elif not d.hosts and path.host and covers(d.prefix, normal):
            message = (
                f"host {path.host} ({ingress.subject}) is not imported: its requests that reach Graylane "
                "match this any-host route"
            )
            out.append(
                Finding("warning", f"CanaryRoute {d.pair.main.namespace}/{name}", "spec.hosts", message)
            )
    return list(dict.fromkeys(out))


def _explain(d: Draft, name: str, objects: Mapping[str, Any], options: ImportOptions) -> tuple[str, ...]:
    (stable, s_obj), (canary, c_obj) = objects.items()
    hosts = ", ".join(d.hosts) or "any host"
    lines = [
        f"CanaryRoute {d.pair.main.namespace}/{name}: {hosts}, pathPrefix {d.prefix} "
        f"(Ingress path {d.pair.main_path.path}, pathType {d.pair.main_path.path_type})",
        f"  stable: Upstream {stable} <- main Ingress {d.pair.main.key} "
        f"(Service {d.stable[1]}:{d.stable[2]}, version {s_obj['spec']['metadata']['version']})",
        f"  canary: Upstream {canary} <- canary Ingress {d.pair.canary.key} "
        f"(Service {d.canary[1]}:{d.canary[2]}, version {c_obj['spec']['metadata']['version']})",
        "ingress-nginx precedence is header, then cookie, then weight; the rules keep that order:",
    ]
    policy_lines = canary_rules.explain(
        d.pair.policy, prefix=options.annotation_prefix, sticky=options.sticky
    )
    return (*lines, *(f"  {line}" for line in policy_lines))
