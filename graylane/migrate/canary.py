"""ingress-nginx's canary annotations -> CanaryRoute ``rules`` and ``weight``.

The rules follow ingress-nginx's documentation (docs/user-guide/nginx-configuration/annotations.md#canary)
and its balancer (rootfs/etc/nginx/lua/balancer.lua, ``route_to_alternative_balancer``):

1. ``canary-by-header`` H, when the request has H:
   with ``canary-by-header-value`` V: H == V -> canary, any other value falls through;
   else with ``canary-by-header-pattern`` P: P matches H (PCRE search) -> canary, else falls through;
   else H == ``always`` -> canary, H == ``never`` -> stable, anything else falls through.
2. ``canary-by-cookie`` C, when the request has C: ``always`` -> canary, ``never`` -> stable.
3. ``canary-weight`` W of ``canary-weight-total`` T: canary with probability W/T (T defaults to 100; the
   balancer uses 100 for any T not above 100).

CanaryRoute rules are tried in order and the first match decides, so the rules come out in exactly that
order and ``never`` is a rule to stable ahead of the weighted split. Empty values count as unset (``#value >
0`` in the balancer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from graylane.config.matchblock import HEADER_NAME
from graylane.migrate.model import FALSE, TRUE, Finding, Ingress
from graylane.migrate.pattern import to_re2

INTEGER = re.compile(r"[+-]?[0-9]{1,9}")  # Go's strconv.Atoi, bounded
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    header: str | None
    header_value: str | None
    header_pattern: str | None  # as written
    header_regex: str | None  # the RE2 full-match form of header_pattern
    cookie: str | None
    weight: Decimal  # percent of the remaining traffic, two decimals
    weight_source: str  # "10 of 100"


def annotation(ingress: Ingress, prefix: str, name: str) -> str | None:
    value = ingress.annotations.get(f"{prefix}/{name}")
    return value if value else None


def path_of(prefix: str, name: str) -> str:
    return f"metadata.annotations[{prefix}/{name}]"


def is_canary(ingress: Ingress, prefix: str) -> tuple[bool, list[Finding]]:
    """Whether ``canary: "true"``; canary-* annotations without it are an error (ingress-nginx refuses
    them)."""
    raw = ingress.annotations.get(f"{prefix}/canary")
    if raw is not None and raw not in TRUE | FALSE:
        message = f'{raw!r}: must be "true" or "false" (ingress-nginx read it as false)'
        return False, [Finding("error", ingress.subject, path_of(prefix, "canary"), message)]
    if raw in TRUE:
        return True, []
    stray = sorted(k for k in ingress.annotations if k.startswith(f"{prefix}/canary-"))
    if stray:
        message = (
            'canary annotations without canary: "true" (ingress-nginx rejects this Ingress\'s canary set)'
        )
        return False, [Finding("error", ingress.subject, f"metadata.annotations[{stray[0]}]", message)]
    return False, []


def parse_policy(ingress: Ingress, prefix: str) -> tuple[CanaryPolicy | None, list[Finding]]:
    findings: list[Finding] = []
    header = _header(ingress, prefix, findings)
    value, pattern, regex = _header_match(ingress, prefix, header, findings)
    cookie = annotation(ingress, prefix, "canary-by-cookie")
    if cookie is not None and not HEADER_NAME.fullmatch(cookie):
        findings.append(_error(ingress, prefix, "canary-by-cookie", f"{cookie!r} is not a valid cookie name"))
    weight = _weight(ingress, prefix, findings)
    if any(f.severity == "error" for f in findings) or weight is None:
        return None, findings
    return CanaryPolicy(header, value, pattern, regex, cookie, weight[0], weight[1]), findings


def _error(ingress: Ingress, prefix: str, name: str, message: str) -> Finding:
    return Finding("error", ingress.subject, path_of(prefix, name), message)


def _header(ingress: Ingress, prefix: str, findings: list[Finding]) -> str | None:
    raw = annotation(ingress, prefix, "canary-by-header")
    if raw is None:
        return None
    name = raw.replace("_", "-")  # nginx reads $http_<name> with - and _ alike; headers with _ are dropped
    if not HEADER_NAME.fullmatch(name):
        findings.append(_error(ingress, prefix, "canary-by-header", f"{raw!r} is not a valid header name"))
        return None
    if name != raw:
        message = (
            f"{raw!r} matches the request header {name!r} in nginx (which drops headers with _): "
            f"imported as {name!r}"
        )
        findings.append(Finding("note", ingress.subject, path_of(prefix, "canary-by-header"), message))
    return name


def _header_match(
    ingress: Ingress, prefix: str, header: str | None, findings: list[Finding]
) -> tuple[str | None, str | None, str | None]:
    value = annotation(ingress, prefix, "canary-by-header-value")
    pattern = annotation(ingress, prefix, "canary-by-header-pattern")
    for name, given in (("canary-by-header-value", value), ("canary-by-header-pattern", pattern)):
        if given is not None and header is None and annotation(ingress, prefix, "canary-by-header") is None:
            message = "has no effect without canary-by-header (ingress-nginx ignores it too): not imported"
            findings.append(Finding("warning", ingress.subject, path_of(prefix, name), message))
    if header is None:
        return None, None, None
    if value is not None:
        if pattern is not None:
            message = "ignored because canary-by-header-value is set (as in ingress-nginx)"
            findings.append(
                Finding("note", ingress.subject, path_of(prefix, "canary-by-header-pattern"), message)
            )
        return value, None, None
    if pattern is None:
        return None, None, None
    regex, problem = to_re2(pattern)
    if problem:
        findings.append(_error(ingress, prefix, "canary-by-header-pattern", problem))
    return None, pattern, regex


def _weight(ingress: Ingress, prefix: str, findings: list[Finding]) -> tuple[Decimal, str] | None:
    weight = _integer(ingress, prefix, "canary-weight", 0, findings)
    total = _integer(ingress, prefix, "canary-weight-total", 100, findings)
    if weight is None or total is None:
        return None
    if total < 1:
        findings.append(_error(ingress, prefix, "canary-weight-total", f"{total}: must be at least 1"))
        return None
    if not 0 <= weight <= total:
        message = f"{weight}: must be between 0 and canary-weight-total ({total})"
        findings.append(_error(ingress, prefix, "canary-weight", message))
        return None
    effective = total if total > 100 else 100
    if total < 100:
        message = (
            f"{total}: ingress-nginx's balancer uses 100 for any total not above 100, so canary-weight "
            f"{weight} sent {weight}% to the canary; imported as {weight}% (the same behaviour)"
        )
        findings.append(Finding("warning", ingress.subject, path_of(prefix, "canary-weight-total"), message))
    exact = Decimal(weight * 100) / Decimal(effective)
    percent = exact.quantize(CENT, rounding=ROUND_HALF_UP)
    if percent != exact:
        message = (
            f"{weight} of {effective} is {exact:.6f}%: rounded to {percent}% (spec.weight has two decimals)"
        )
        findings.append(Finding("note", ingress.subject, path_of(prefix, "canary-weight"), message))
    return percent, f"{weight} of {effective}"


def _integer(ingress: Ingress, prefix: str, name: str, default: int, findings: list[Finding]) -> int | None:
    raw = annotation(ingress, prefix, name)
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw):
        message = f"{raw!r} is not an integer (ingress-nginx would silently use {default})"
        findings.append(_error(ingress, prefix, name, message))
        return None
    return int(raw)


def policy_rules(policy: CanaryPolicy) -> list[dict[str, Any]]:
    """The CanaryRoute ``rules``, in ingress-nginx's precedence: header, then cookie."""
    rules: list[dict[str, Any]] = []
    if policy.header is not None:
        if policy.header_value is not None:
            rules.append(
                _rule("header-value", "headers", policy.header, "exact", policy.header_value, "canary")
            )
        elif policy.header_regex is not None:
            rules.append(
                _rule("header-pattern", "headers", policy.header, "regex", policy.header_regex, "canary")
            )
        else:
            rules.append(_rule("header-always", "headers", policy.header, "exact", "always", "canary"))
            rules.append(_rule("header-never", "headers", policy.header, "exact", "never", "stable"))
    if policy.cookie is not None:
        rules.append(_rule("cookie-always", "cookies", policy.cookie, "exact", "always", "canary"))
        rules.append(_rule("cookie-never", "cookies", policy.cookie, "exact", "never", "stable"))
    return rules


def _rule(name: str, kind: str, key: str, op: str, operand: str, to: str) -> dict[str, Any]:
    return {"name": name, "match": {kind: [{"name": key, op: operand}]}, "to": to}


def weight_value(percent: Decimal) -> int | float:
    """``spec.weight`` as YAML shows it: ``10``, ``12.5``."""
    return int(percent) if percent == percent.to_integral_value() else float(percent)


def explain(policy: CanaryPolicy, *, prefix: str, sticky: str | None) -> list[str]:
    """Lines for the output file: each canary annotation and what it became."""
    lines = []
    if policy.header is not None:
        head = f"{prefix}/canary-by-header: {policy.header}"
        if policy.header_value is not None:
            lines.append(f"{head}, -value: {policy.header_value}")
            lines.append(
                f"  -> rule header-value: {policy.header}: {policy.header_value} -> canary; "
                "other values fall through"
            )
        elif policy.header_pattern is not None:
            lines.append(f"{head}, -pattern: {policy.header_pattern}")
            lines.append(
                f"  -> rule header-pattern: {policy.header} matching RE2 {policy.header_regex} -> canary"
            )
        else:
            lines.append(head)
            lines.append(
                f"  -> rules header-always ({policy.header}: always -> canary), "
                "header-never (never -> stable)"
            )
    if policy.cookie is not None:
        lines.append(f"{prefix}/canary-by-cookie: {policy.cookie}")
        lines.append(
            f"  -> rules cookie-always ({policy.cookie}=always -> canary), cookie-never (never -> stable)"
        )
    split = (
        f"sticky on {sticky} (ingress-nginx drew per request)"
        if sticky
        else "per-request random, as in ingress-nginx"
    )
    lines.append(f"{prefix}/canary-weight: {policy.weight_source}")
    lines.append(f"  -> spec.weight: {weight_value(policy.weight)} ({split})")
    return lines
