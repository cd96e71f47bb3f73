"""``canary-by-header-pattern`` (PCRE, searched anywhere in the value) -> a Graylane ``regex`` (RE2, full
match).

ingress-nginx runs ``ngx.re.match(value, pattern)`` without options: an unanchored PCRE search, case
sensitive. A Graylane ``regex`` must match the whole value, so the pattern is wrapped as
``.*(?:PATTERN).*`` -- the same set of values for every pattern RE2 accepts (``^``/``$`` keep their meaning
inside the group; inline flags such as ``(?i)`` stay scoped to it). Constructs that only PCRE has
(lookaround, backreferences, atomic groups, possessive quantifiers, recursion, ``\\K``, ``\\Z`` ...) make RE2
refuse the pattern; the error names the construct found.
"""

from __future__ import annotations

import re

import re2

from graylane.config.matchblock import compile_regex, re2_message
from graylane.config.model import MAX_REGEX_LENGTH

WRAP = ".*(?:{}).*"
MAX_PATTERN = MAX_REGEX_LENGTH - len(WRAP.format(""))

# PCRE-only syntax, checked in order; the first found names the problem.
_PCRE_ONLY: tuple[tuple[str, str], ...] = (
    (r"\(\?<?[=!]", "lookaround (?= (?! (?<= (?<!"),
    (r"\(\?>", "an atomic group (?>...)"),
    (r"\(\?(?:R|[+-]?\d+|&\w+|P>\w+)\)", "recursion (?R) / subroutine calls"),
    (r"\(\?\(", "a conditional (?(...)...)"),
    (r"\\[1-9]|\\g\{?-?\d|\\k[<{']|\(\?P=", "a backreference"),
    (r"(?:[*+?]|\})\+", "a possessive quantifier (*+ ++ ?+ {n}+)"),
    (r"\\[KGZRXhHvVN]", "a PCRE-only escape (\\K \\G \\Z \\R \\X \\h \\v \\N)"),
    (r"\(\*[A-Z_]+", "a backtracking control verb (*SKIP) (*FAIL) ..."),
    (r"\(\?C", "a callout (?C)"),
)


def to_re2(pattern: str) -> tuple[str | None, str | None]:
    """``(regex, None)`` for Graylane, or ``(None, why not)``."""
    if not pattern:
        return None, "must not be empty"
    wrapped = WRAP.format(pattern)
    if len(wrapped) > MAX_REGEX_LENGTH:
        return (
            None,
            f"is too long ({len(pattern)} characters; at most {MAX_PATTERN} can be imported)",
        )
    try:
        compile_regex(wrapped)
    except re2.error as exc:
        return None, _why(pattern, exc)
    return wrapped, None


def _why(pattern: str, exc: re2.error) -> str:
    plain = _blank_escaped_symbols(pattern)
    for syntax, what in _PCRE_ONLY:
        if re.search(syntax, plain):
            return f"{pattern!r} uses {what}, which only PCRE has: rewrite it for RE2"
    try:
        re.compile(pattern)
    except re.error as py_exc:
        return f"{pattern!r} is not a valid regular expression: {py_exc}"
    return f"{pattern!r} is not an RE2 expression: {re2_message(exc)}"


def _blank_escaped_symbols(pattern: str) -> str:
    """``\\(``, ``\\*``, ``\\\\`` are literals, not syntax: blank them before looking for PCRE-only syntax
    (escapes of letters and digits, such as ``\\1`` or ``\\K``, stay)."""
    return re.sub(r"\\[^A-Za-z0-9]", "__", pattern)
