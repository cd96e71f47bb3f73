"""Pair each canary Ingress path with the main Ingress path it shapes.

ingress-nginx merges a canary Ingress's backend into the location of the main (non-canary) Ingress with the
same host (no host: the default server), the same path and the same pathType
(internal/ingress/controller/controller.go, ``mergeAlternativeBackends``); a canary without one is dropped,
and one canary per location is the documented limit. Here every such case is an error that names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graylane.migrate.canary import CanaryPolicy
from graylane.migrate.model import Finding, Ingress, IngressPath

Location = tuple[str, str, str]  # host, path, pathType


@dataclass(frozen=True, slots=True)
class Pair:
    main: Ingress
    main_path: IngressPath
    canary: Ingress
    canary_path: IngressPath
    policy: CanaryPolicy


def location(path: IngressPath) -> Location:
    return (path.host, path.path, path.path_type)


def describe(loc: Location) -> str:
    host, path, path_type = loc
    return f"host {host or '(any)'} path {path} (pathType {path_type})"


def pair_canaries(
    mains: Sequence[Ingress], canaries: Sequence[tuple[Ingress, CanaryPolicy]]
) -> tuple[list[Pair], list[Finding]]:
    index: dict[Location, list[tuple[Ingress, IngressPath]]] = {}
    for main in mains:
        for path in main.paths:
            index.setdefault(location(path), []).append((main, path))
    claimed = _claims(canaries)
    pairs: list[Pair] = []
    findings: list[Finding] = []
    for canary, policy in canaries:
        findings += _canary_shape(canary)
        for path in canary.paths:
            others = [c.key for c in claimed[location(path)] if c.key != canary.key]
            if others:
                message = (
                    f"{describe(location(path))} has more than one canary ({', '.join(others)} too); "
                    "ingress-nginx applies only one"
                )
                findings.append(Finding("error", canary.subject, path.where, message))
                continue
            found, problems = _main_for(canary, path, index)
            findings += problems
            if found is not None:
                pairs.append(Pair(found[0], found[1], canary, path, policy))
    return pairs, findings


def _claims(canaries: Sequence[tuple[Ingress, CanaryPolicy]]) -> dict[Location, list[Ingress]]:
    claimed: dict[Location, list[Ingress]] = {}
    for canary, _ in canaries:
        for path in canary.paths:
            users = claimed.setdefault(location(path), [])
            if canary.key not in {u.key for u in users}:
                users.append(canary)
    return claimed


def _canary_shape(canary: Ingress) -> list[Finding]:
    findings = []
    if canary.default_backend:
        message = (
            "a canary defaultBackend is not imported: give the canary the host and path rules of its "
            "main Ingress"
        )
        findings.append(Finding("error", canary.subject, "spec.defaultBackend", message))
    elif not canary.paths:
        findings.append(
            Finding("error", canary.subject, "spec.rules", "a canary Ingress needs host and path rules")
        )
    return findings


def _main_for(
    canary: Ingress, path: IngressPath, index: dict[Location, list[tuple[Ingress, IngressPath]]]
) -> tuple[tuple[Ingress, IngressPath] | None, list[Finding]]:
    loc = location(path)
    candidates = index.get(loc, [])
    if not candidates:
        return None, [Finding("error", canary.subject, path.where, _no_main(loc, index))]
    if len(candidates) > 1:
        names = ", ".join(m.key for m, _ in candidates)
        return None, [
            Finding(
                "error", canary.subject, path.where, f"{describe(loc)} has several main Ingresses: {names}"
            )
        ]
    main, main_path = candidates[0]
    problem = _unpairable(canary, path, main, main_path)
    return (
        (None, [Finding("error", canary.subject, path.where, problem)])
        if problem
        else ((main, main_path), [])
    )


def _unpairable(canary: Ingress, path: IngressPath, main: Ingress, main_path: IngressPath) -> str | None:
    if main.namespace != canary.namespace:
        return (
            f"its main Ingress {main.key} is in another namespace; a CanaryRoute's Upstreams share one "
            "namespace"
        )
    if path.backend is None or main_path.backend is None:
        which = "this path" if path.backend is None else f"the main Ingress {main.key}"
        return f"{which} has a resource backend; Graylane routes to Services only"
    if path.backend == main_path.backend:
        return f"names the same Service as its main Ingress {main.key} (ingress-nginx ignores such a canary)"
    return None


def _no_main(loc: Location, index: dict[Location, list[tuple[Ingress, IngressPath]]]) -> str:
    host, path, _ = loc
    near = [f"{m.key} has it with pathType {p.path_type}" for (h, pa, _), found in index.items()
            if (h, pa) == (host, path) for m, p in found]  # fmt: skip
    hint = f" ({'; '.join(near)}: ingress-nginx pairs equal pathTypes only)" if near else ""
    return f"no main Ingress for {describe(loc)}{hint}; ingress-nginx ignores this canary"
