"""An Ingress path -> a CanaryRoute ``pathPrefix``, or a clear error; never a silent widening.

Kubernetes ``Prefix`` matches whole path segments and ignores a trailing ``/`` (``/api`` and ``/api/`` both
match ``/api``, ``/api/x``, not ``/apix``), which is exactly ``pathPrefix``. ``Exact`` cannot be expressed
(``pathPrefix`` would also take every deeper path): an error. ``ImplementationSpecific`` is a plain nginx
location, a character prefix (``/api`` also takes ``/apix``; ``/api/`` not ``/api``): imported by segments
with a warning. When an Ingress of the host sets ``use-regex`` or ``rewrite-target``, ingress-nginx turns
every path of that host into a case-insensitive regex location: a path with regex syntax is an error, a
plain one is imported with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from graylane.config.routeblock import PATH as PATH_PREFIX
from graylane.migrate.model import TRUE, Finding, Ingress, IngressPath

REGEX_SYNTAX = re.compile(r"[\\^$.|?*+()\[\]{}]")


def path_prefix(
    main: Ingress, path: IngressPath, hosts: Sequence[str], ingresses: Sequence[Ingress], *, prefix: str
) -> tuple[str | None, list[Finding]]:
    """The ``pathPrefix`` for ``path`` of ``main`` (its canary has the same path and type), or None."""
    where = f"{path.where}.pathType"
    if path.path_type == "Exact":
        message = (
            "Exact cannot be expressed: a CanaryRoute's pathPrefix also matches deeper paths; change both "
            "Ingresses to Prefix if that is what you want, or keep this path on another router"
        )
        return None, [Finding("error", main.subject, where, message)]
    findings: list[Finding] = []
    regex_by = _regex_hosts(ingresses, hosts, prefix)
    if regex_by:
        if REGEX_SYNTAX.search(path.path):
            message = (
                f"{path.path!r} is a regular expression here ({regex_by}); Graylane matches path "
                "prefixes only"
            )
            return None, [Finding("error", main.subject, f"{path.where}.path", message)]
        message = (
            f"ingress-nginx matched it as a case-insensitive regex prefix ({regex_by}); "
            "Graylane matches whole segments, case-sensitively"
        )
        findings.append(Finding("warning", main.subject, f"{path.where}.path", message))
    elif path.path_type == "ImplementationSpecific":
        message = (
            f"ingress-nginx matched {path.path!r} as a character prefix; Graylane matches whole segments "
            f"({_segment_difference(path.path)}); use Prefix to say so"
        )
        findings.append(Finding("warning", main.subject, where, message))
    normal = path.path.rstrip("/") or "/"
    problem = prefix_problem(normal)
    if problem:
        return None, [Finding("error", main.subject, f"{path.where}.path", f"{path.path!r} {problem}")]
    return normal, findings


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a CanaryRoute ``pathPrefix`` (the CRD's and the loader's rules), or None."""
    segments = prefix.split("/")[1:]
    lowered = prefix.lower()
    if not PATH_PREFIX.fullmatch(prefix):
        return "cannot be a pathPrefix: it must start with / and use URL path characters only"
    if "//" in prefix or any(s in (".", "..") for s in segments):
        return "cannot be a pathPrefix: no //, . or .. segments"
    if "%2e" in lowered or "%2f" in lowered or "%00" in prefix:
        return "cannot be a pathPrefix: no encoded dots, slashes or NUL"
    return None


def covers(prefix: str, path: str) -> bool:
    """Whether ``pathPrefix`` ``prefix`` takes requests for ``path`` (whole segments)."""
    path = path.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def _segment_difference(path: str) -> str:
    if path.endswith("/") and path != "/":
        return f"it also takes {path.rstrip('/')!r} itself"
    if path == "/":
        return "the same set of paths"
    return f"it no longer takes {path + 'x'!r}"


def _regex_hosts(ingresses: Sequence[Ingress], hosts: Sequence[str], prefix: str) -> str:
    """Which Ingress makes the paths of these hosts regexes (``use-regex``/``rewrite-target``), or ""."""
    for ingress in ingresses:
        if not any(p.host in hosts or (not hosts and not p.host) for p in ingress.paths):
            continue
        if ingress.annotations.get(f"{prefix}/use-regex") in TRUE:
            return f"use-regex on Ingress {ingress.key}"
        target = ingress.annotations.get(f"{prefix}/rewrite-target")
        if target and any(p.path != target for p in ingress.paths):  # ingress-nginx's needsRewrite
            return f"rewrite-target on Ingress {ingress.key}"
    return ""
