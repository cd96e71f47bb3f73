"""The YAML that ``graylane import ingress-nginx`` writes: per route one file with a comment block that
explains the mapping and lists what was not carried over, then the Upstreams and the CanaryRoute."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import yaml

from graylane.migrate.model import ImportedRoute

WIDTH = 110
HEADER = (
    "Imported from ingress-nginx by `graylane import ingress-nginx`.",
    "Review it, then `kubectl apply -f` it; `graylane render -f` shows the compiled route.",
)


def route_yaml(route: ImportedRoute) -> str:
    lines = [*HEADER, "", *route.explanation]
    for severity, title in (
        ("error", "Errors"),
        ("warning", "Not carried over (warnings)"),
        ("note", "Notes"),
    ):
        found = [str(f) for f in route.findings if f.severity == severity]
        if found:
            lines += ["", f"{title}:", *(f"  {line}" for line in found)]
    parts = [_comment(lines)]
    stable, canary = route.upstreams
    parts.append(_document(stable, f"The stable track: Upstream {stable['metadata']['name']}"))
    parts.append(_document(canary, f"The canary track: Upstream {canary['metadata']['name']}"))
    parts.append(_document(route.route, "The route: rules first (in order), then the weighted split"))
    return "---\n".join(parts)


def route_line(route: ImportedRoute, *, sticky: str | None) -> str:
    """One line for stdout: which route, its rules and its split."""
    spec = route.route["spec"]
    rules = ", ".join(r["name"] for r in spec.get("rules", [])) or "none"
    split = f"sticky on {sticky}" if sticky else "per-request random"
    return f"CanaryRoute {route.namespace}/{route.name}, rules: {rules}, weight {spec['weight']} ({split})"


def _comment(lines: list[str]) -> str:
    out = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")) + 4)
        wrapped = textwrap.wrap(line, WIDTH - 2, subsequent_indent=indent, break_on_hyphens=False) or [""]
        out += [f"# {w}".rstrip() for w in wrapped]
    return "\n".join(out) + "\n"


def _document(obj: Mapping[str, Any], title: str) -> str:
    body = yaml.safe_dump(_plain(obj), sort_keys=False, default_flow_style=False, width=WIDTH)
    return f"# {title}\n{body}"


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists, so that yaml.safe_dump accepts them."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
