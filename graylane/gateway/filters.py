"""An HTTPRoute rule's filters and timeouts -> the document's ``filters`` and ``timeouts`` (schema 2).

Built: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite (hostname, path),
RequestMirror (any number per rule, ``percent`` or ``fraction``), ``timeouts.request`` /
``backendRequest``, and RequestHeaderModifier / ResponseHeaderModifier on a backendRef.
:func:`filter_problem` names what is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from graylane.gateway.objects import Filter, RouteRule
from graylane.gateway.refs import Resolved

RULE_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite",
                "RequestMirror")  # fmt: skip
BACKEND_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier")
HEADER_KEYS = {"RequestHeaderModifier": "requestHeaders", "ResponseHeaderModifier": "responseHeaders"}
DURATION = re.compile(r"(?:[0-9]{1,5}(?:h|ms|m|s)){1,4}")
_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float | None:
    """A Gateway API Duration (GEP-2257: ``1h``, ``500ms``, ``1m30s``) in seconds, or None if malformed."""
    if not DURATION.fullmatch(text):
        return None
    return sum(int(n) * _UNIT[unit] for n, unit in _PART.findall(text))


def filter_problem(rule: RouteRule, path: str) -> str | None:
    """Why Graylane cannot serve this rule's filters or timeouts (a field path and what), or None."""
    for j, item in enumerate(rule.filters):
        if item.type not in RULE_FILTERS:
            return f"{path}.filters[{j}].type: {item.type} is not supported by Graylane yet"
        replace = _replace_type(item)
        if replace == "ReplacePrefixMatch" and any(m.path.type != "PathPrefix" for m in rule.matches):
            return f"{path}.filters[{j}]: ReplacePrefixMatch needs PathPrefix matches only"
    for j, backend in enumerate(rule.backends):
        for k, item in enumerate(backend.filters):
            if item.type not in BACKEND_FILTERS:
                return (
                    f"{path}.backendRefs[{j}].filters[{k}].type: {item.type} is not supported on a backendRef"
                )
    for key, value in rule.timeouts.items():
        if (
            key not in ("request", "backendRequest")
            or not isinstance(value, str)
            or parse_duration(value) is None
        ):
            return f"{path}.timeouts.{key}: not a duration Graylane reads"
    return None


def rule_filters(filters: Sequence[Filter], mirrors: Sequence[Resolved] = ()) -> dict[str, Any]:
    """The document's ``filters`` of a rule (or a backend); ``mirrors`` are the RequestMirrors resolved
    (one that cannot be resolved is left out: ResolvedRefs says why)."""
    out: dict[str, Any] = {}
    copies = iter(mirrors)
    for item in filters:
        spec = item.spec
        if item.type in HEADER_KEYS:
            _headers(out.setdefault(HEADER_KEYS[item.type], {}), spec)
        elif item.type == "RequestRedirect":
            out["redirect"] = _redirect(spec)
        elif item.type == "URLRewrite":
            out["rewrite"] = _rewrite(spec)
        elif item.type == "RequestMirror":
            resolved = next(copies, None)
            if resolved is not None and resolved.key is not None:
                out.setdefault("mirrors", []).append({"upstream": resolved.key, "percent": _percent(spec)})
    return {key: value for key, value in out.items() if value}


def rule_timeouts(timeouts: Mapping[str, Any]) -> dict[str, float]:
    return {key: parse_duration(value) or 0.0 for key, value in timeouts.items() if isinstance(value, str)}


def _headers(out: dict[str, Any], spec: Mapping[str, Any]) -> None:
    for op in ("set", "add"):
        pairs = {
            str(h.get("name")): str(h.get("value", "")) for h in spec.get(op) or [] if isinstance(h, Mapping)
        }
        if pairs:
            out.setdefault(op, {}).update(pairs)
    if spec.get("remove"):
        out.setdefault("remove", []).extend(str(n) for n in spec["remove"])


def _redirect(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        key: spec[key] for key in ("scheme", "hostname", "port", "statusCode") if spec.get(key) is not None
    }
    return _with_path(out, spec)


def _rewrite(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = {"hostname": spec["hostname"]} if spec.get("hostname") is not None else {}
    return _with_path(out, spec)


def _with_path(out: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    path = spec.get("path")
    if isinstance(path, Mapping):
        kind = path.get("type")
        value = path.get("replaceFullPath") if kind == "ReplaceFullPath" else path.get("replacePrefixMatch")
        out["path"] = {"type": kind, "value": value or "/"}  # an empty ReplacePrefixMatch acts as "/"
    return out


def _replace_type(item: Filter) -> str | None:
    block = item.spec.get("path") if item.type in ("URLRewrite", "RequestRedirect") else None
    return block.get("type") if isinstance(block, Mapping) else None


def _percent(spec: Mapping[str, Any]) -> float:
    """A RequestMirror's share in percent (two decimals): ``percent``, ``fraction`` or all of them."""
    fraction = spec.get("fraction")
    if isinstance(fraction, Mapping):
        numerator, denominator = fraction.get("numerator", 0), fraction.get("denominator", 100)
        if isinstance(numerator, int) and isinstance(denominator, int) and denominator > 0:
            return round(min(100.0, 100.0 * numerator / denominator), 2)
    percent = spec.get("percent")
    return float(percent) if isinstance(percent, int) and 0 <= percent <= 100 else 100.0
