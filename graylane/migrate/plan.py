"""The whole import as one pure function: objects in, routes and findings out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from graylane.config.stickyblock import STICKY_KEY
from graylane.migrate import routes as route_builder
from graylane.migrate.annotations import annotation_findings
from graylane.migrate.canary import CanaryPolicy, is_canary, parse_policy
from graylane.migrate.ingress import is_ingress, is_service, parse_ingress, parse_service
from graylane.migrate.model import Finding, ImportedRoute, ImportOptions, ImportResult, Ingress, ServicePorts
from graylane.migrate.pairing import Pair, pair_canaries


def import_ingresses(
    objects: Sequence[tuple[str, Mapping[str, Any]]], options: ImportOptions
) -> ImportResult:
    """``(source, object)`` pairs (Ingresses, Services; anything else is ignored) -> the import."""
    findings = _check_options(options)
    ingresses, services, read = _read(objects, options)
    mains, canaries, classified = _classify(ingresses, options)
    pairs, paired = pair_canaries(mains, canaries)
    drafts, drafted = _drafts(pairs, mains, services, options)
    all_paths = [(i, p) for i in mains for p in i.paths]
    routes, built = route_builder.build(drafts, all_paths=all_paths, options=options)
    findings += read + classified + paired + _annotations(pairs, options) + drafted + built
    findings += _not_imported(mains, pairs)
    findings += _collisions(routes)
    findings = list(dict.fromkeys(findings))
    if options.strict:
        findings = [replace(f, severity="error") if f.severity == "warning" else f for f in findings]
    routes = [replace(r, findings=tuple(f for f in findings if r.concerns(f))) for r in routes]
    return ImportResult(tuple(routes), tuple(findings))


def _check_options(options: ImportOptions) -> list[Finding]:
    sticky = options.sticky
    if sticky is None:
        return []
    if not STICKY_KEY.fullmatch(sticky):
        why = "must be header:<Name>, cookie:<name>, query:<name> or sourceIP"
    elif sticky.startswith("jwt:"):
        why = "jwt: keys need spec.jwt (a verified token); add both to the CanaryRoutes by hand"
    else:
        return []
    return [Finding("error", "--sticky", "", f"{sticky!r}: {why}")]


def _read(
    objects: Sequence[tuple[str, Mapping[str, Any]]], options: ImportOptions
) -> tuple[list[Ingress], dict[tuple[str, str], ServicePorts], list[Finding]]:
    ingresses: list[Ingress] = []
    services: dict[tuple[str, str], ServicePorts] = {}
    findings: list[Finding] = []
    for source, obj in objects:
        if is_service(obj):
            service = parse_service(obj, default_namespace=options.default_namespace)
            if service is not None:
                services[(service.namespace, service.name)] = service
        elif is_ingress(obj):
            ingress, problems = parse_ingress(obj, source=source, default_namespace=options.default_namespace)
            findings += [replace(f, subject=f"{f.subject} ({source})") for f in problems]
            if ingress is not None:
                ingresses.append(ingress)
    seen: dict[str, Ingress] = {}
    for ingress in ingresses:
        if ingress.key in seen:
            message = f"defined twice ({seen[ingress.key].source} and {ingress.source})"
            findings.append(Finding("error", ingress.subject, "metadata.name", message))
        seen[ingress.key] = ingress
    return list(seen.values()), services, findings


def _classify(
    ingresses: Sequence[Ingress], options: ImportOptions
) -> tuple[list[Ingress], list[tuple[Ingress, CanaryPolicy]], list[Finding]]:
    mains: list[Ingress] = []
    canaries: list[tuple[Ingress, CanaryPolicy]] = []
    findings: list[Finding] = []
    for ingress in ingresses:
        if ingress.ingress_class not in (None, options.ingress_class):
            message = (
                f"class {ingress.ingress_class!r} is not {options.ingress_class!r} (--ingress-class): skipped"
            )
            findings.append(Finding("note", ingress.subject, "spec.ingressClassName", message))
            continue
        canary, problems = is_canary(ingress, options.annotation_prefix)
        findings += problems
        if problems:
            continue
        if not canary:
            mains.append(ingress)
            continue
        policy, problems = parse_policy(ingress, options.annotation_prefix)
        findings += problems
        if policy is not None:
            canaries.append((ingress, policy))
    return mains, canaries, findings


def _drafts(
    pairs: Sequence[Pair],
    mains: Sequence[Ingress],
    services: Mapping[tuple[str, str], ServicePorts],
    options: ImportOptions,
) -> tuple[list[route_builder.Draft], list[Finding]]:
    drafts: list[route_builder.Draft] = []
    findings: list[Finding] = []
    for members in route_builder.group_pairs(pairs):
        made, problems = route_builder.draft(members, mains=mains, services=services, options=options)
        findings += problems
        if made is not None:
            drafts.append(made)
    return drafts, findings


def _annotations(pairs: Sequence[Pair], options: ImportOptions) -> list[Finding]:
    found: list[Finding] = []
    for role, ingresses in (("main", [p.main for p in pairs]), ("canary", [p.canary for p in pairs])):
        for ingress in {i.key: i for i in ingresses}.values():
            found += annotation_findings(ingress, role=role, prefix=options.annotation_prefix)
    return found


def _not_imported(mains: Sequence[Ingress], pairs: Sequence[Pair]) -> list[Finding]:
    """Notes: main Ingress paths without a canary stay with whatever replaces ingress-nginx."""
    paired = {(p.main.key, p.main_path.where) for p in pairs}
    with_canary = {p.main.key for p in pairs}
    out = []
    for main in mains:
        if main.key not in with_canary:
            out.append(Finding("note", main.subject, "", "no canary Ingress: not imported"))
            continue
        for path in main.paths:
            if (main.key, path.where) not in paired:
                message = f"{path.host or 'any host'} {path.path} has no canary: not imported"
                out.append(Finding("note", main.subject, path.where, message))
    return out


def _collisions(routes: Sequence[ImportedRoute]) -> list[Finding]:
    """Two routes with one name, or claiming one host and pathPrefix (the operator refuses the second)."""
    names: set[tuple[str, str]] = set()
    claims: dict[tuple[str, str], str] = {}
    out = []
    for route in routes:
        subject = f"CanaryRoute {route.namespace}/{route.name}"
        if (route.namespace, route.name) in names:
            out.append(
                Finding(
                    "error", subject, "metadata.name", "two imported routes got this name: rename an Ingress"
                )
            )
        names.add((route.namespace, route.name))
        spec = route.route["spec"]
        for host in spec["hosts"] or ["(any)"]:
            other = claims.setdefault((host, spec["pathPrefix"]), subject)
            if other != subject:
                message = f"{host} {spec['pathPrefix']} is also claimed by {other} (paths differing by a /?)"
                out.append(Finding("error", subject, "spec.pathPrefix", message))
    return out
