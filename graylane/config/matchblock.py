"""Validation of a rule's ``match`` block and its string matchers (part of :mod:`graylane.config.loader`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import re2

from graylane.config.fields import FieldChecker, join
from graylane.config.model import MAX_REGEX_LENGTH, STRING_OPS, Match, StringMatch

HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
COUNTRY = re.compile(r"[A-Z]{2}")
METHOD = re.compile(r"[A-Z]{1,32}")
ANY_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,256}")

MATCH_KEYS = ("headers", "query", "cookies", "jwtClaims", "sourceCIDRs", "sourceCountries", "methods", "path")

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def compile_regex(pattern: str) -> Any:
    """Compile with RE2 (linear time, no backreferences or lookaround); raises ``re2.error``."""
    return re2.compile(pattern, _RE2_OPTIONS)


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse a CIDR strictly: no host bits, no zone id, no leading zeros; raises ``ValueError``."""
    if "%" in text or text != text.strip():
        raise ValueError("zone ids and spaces are not allowed")
    return ipaddress.ip_network(text, strict=True)


def parse_string_match(
    c: FieldChecker, value: Any, path: str, *, name_key: str | None, name_pattern: re.Pattern[str]
) -> StringMatch | None:
    """One string matcher: exactly one operator, optional ``invert``, and ``name_key`` when given."""
    required = (name_key,) if name_key else ()
    obj = c.obj(value, path, required=required, optional=(*STRING_OPS, "invert"))
    if obj is None:
        return None
    before = len(c.errors)
    name = None
    if name_key and name_key in obj:
        name = c.string(obj[name_key], join(path, name_key), pattern=name_pattern, what="a valid name")
    invert = c.boolean(obj["invert"], join(path, "invert")) if "invert" in obj else False
    ops = [op for op in STRING_OPS if op in obj]
    if len(ops) != 1:
        c.error(path, f"needs exactly one of {', '.join(STRING_OPS)} (found {len(ops)})")
        return None
    op = ops[0]
    op_path = join(path, op)
    operand = obj[op]
    match: StringMatch | None = None
    if op == "in":
        values = c.strings(operand, op_path, min_len=1)
        match = StringMatch(op="in", values=values, invert=bool(invert), name=name)
    elif op == "present":
        if operand is not True:
            c.error(op_path, "must be true (use invert: true for absence)")
        match = StringMatch(op="present", invert=bool(invert), name=name)
    else:
        text = _operand(c, op, operand, op_path)
        if text is not None:
            match = StringMatch(op=op, value=text, invert=bool(invert), name=name)
    return match if len(c.errors) == before else None


def _operand(c: FieldChecker, op: str, operand: Any, path: str) -> str | None:
    if op == "regex":
        text = c.string(operand, path, max_len=MAX_REGEX_LENGTH)
        if text is not None:
            try:
                compile_regex(text)
            except re2.error as exc:
                c.error(path, f"not a valid RE2 expression: {re2_message(exc)}")
                return None
        return text
    return c.string(operand, path, min_len=0 if op == "exact" else 1)


def re2_message(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text[:200]


def parse_match(c: FieldChecker, value: Any, path: str) -> Match | None:
    obj = c.obj(value, path, optional=MATCH_KEYS)
    if obj is None:
        return None
    if not obj:
        c.error(path, "must contain at least one condition")
        return None
    before = len(c.errors)

    def matchers(key: str, name_key: str, pattern: re.Pattern[str]) -> tuple[StringMatch, ...]:
        out = []
        for i, item in enumerate(c.array(obj.get(key, []), join(path, key))):
            parsed = parse_string_match(
                c, item, join(join(path, key), i), name_key=name_key, name_pattern=pattern
            )
            if parsed is not None:
                out.append(parsed)
        return tuple(out)

    path_match = None
    if "path" in obj:
        path_match = parse_string_match(
            c, obj["path"], join(path, "path"), name_key=None, name_pattern=ANY_NAME
        )
    match = Match(
        headers=matchers("headers", "name", HEADER_NAME),
        query=matchers("query", "name", ANY_NAME),
        cookies=matchers("cookies", "name", HEADER_NAME),
        jwt_claims=matchers("jwtClaims", "claim", ANY_NAME),
        source_cidrs=_checked(c, obj, path, "sourceCIDRs", _cidr_problem),
        source_countries=c.strings(
            obj.get("sourceCountries", []),
            join(path, "sourceCountries"),
            pattern=COUNTRY,
            what="an ISO 3166-1 alpha-2 code (two upper-case letters)",
        ),
        methods=c.strings(
            obj.get("methods", []), join(path, "methods"), pattern=METHOD, what="an upper-case HTTP method"
        ),
        path=path_match,
    )
    return match if len(c.errors) == before else None


def _cidr_problem(text: str) -> str | None:
    try:
        parse_cidr(text)
    except ValueError as exc:
        return f"not a valid CIDR: {str(exc)[:120]}"
    return None


def _checked(
    c: FieldChecker, obj: Any, path: str, key: str, problem: Callable[[str], str | None]
) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(c.array(obj.get(key, []), join(path, key), max_len=10_000)):
        item_path = join(join(path, key), i)
        text = c.string(item, item_path, max_len=64)
        if text is None:
            continue
        msg = problem(text)
        if msg:
            c.error(item_path, msg)
        else:
            out.append(text)
    return tuple(out)
