"""canary-by-header-pattern -> RE2 (graylane.migrate.pattern).

ingress-nginx: "This works the same way as canary-by-header-value except it does PCRE Regex matching"
(annotations.md, Canary), run as ``ngx.re.match(header, pattern)`` -- an unanchored search. Graylane's
``regex`` is a full match, so the import wraps the pattern; the property test checks that the wrapped RE2
expression accepts exactly the values a search accepts (Python's ``re`` stands in for PCRE on the syntax
both share).
"""

from __future__ import annotations

import re

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.migrate.pattern import to_re2

PCRE_ONLY = [
    ("(?=a)b", "lookaround"),
    ("a(?!b)", "lookaround"),
    ("(?<=x)y", "lookaround"),
    ("(?<!x)y", "lookaround"),
    ("(?>ab|a)c", "atomic group"),
    ("(a)\\1", "backreference"),
    ("(?P<x>a)(?P=x)", "backreference"),
    ("\\k<x>", "backreference"),
    ("a++b", "possessive quantifier"),
    ("a{2}+", "possessive quantifier"),
    ("(a|(?R))", "recursion"),
    ("(?(1)a|b)", "conditional"),
    ("foo\\Kbar", "PCRE-only escape"),
    ("end\\Z", "PCRE-only escape"),
    ("\\h+", "PCRE-only escape"),
    ("(*SKIP)a", "backtracking control verb"),
]


@pytest.mark.parametrize(("pattern", "construct"), PCRE_ONLY)
def test_pcre_only_syntax_is_an_error_naming_the_construct(pattern: str, construct: str) -> None:
    regex, problem = to_re2(pattern)
    assert regex is None and problem is not None
    assert construct in problem and repr(pattern) in problem


@pytest.mark.parametrize("pattern", ["(unclosed", "a)", "[z-a]", "*a"])
def test_broken_pattern_is_an_error(pattern: str) -> None:
    regex, problem = to_re2(pattern)
    assert regex is None and problem is not None and repr(pattern) in problem


@pytest.mark.parametrize("pattern", ["\\(?=literal", "a\\\\1", "a\\+\\+"])
def test_escaped_symbols_are_literals_not_pcre_syntax(pattern: str) -> None:
    regex, problem = to_re2(pattern)
    assert problem is None and regex == f".*(?:{pattern}).*"


def test_empty_and_too_long_patterns() -> None:
    assert to_re2("")[1] == "must not be empty"
    assert "too long" in str(to_re2("a" * 1017)[1])
    assert to_re2("a" * 1016)[0] is not None  # 1016 + len(".*(?:).*") = 1024, the matcher's bound


TABLE = [
    # pattern, value, matched by ingress-nginx's search
    ("beta", "is-beta-user", True),
    ("^beta", "is-beta-user", False),
    ("^v[0-9]+$", "v12", True),
    ("^v[0-9]+$", "xv12", False),
    ("a|b", "xxbxx", True),
    ("(?i)CANARY", "my-canary", True),
    ("CANARY", "my-canary", False),
    ("^$", "", True),
    ("x*", "anything", True),  # matches the empty string anywhere
]


@pytest.mark.parametrize(("pattern", "value", "matched"), TABLE)
def test_wrapped_pattern_matches_what_the_search_matched(pattern: str, value: str, matched: bool) -> None:
    regex, _ = to_re2(pattern)
    assert regex is not None
    assert (re2.fullmatch(regex, value) is not None) is matched
    assert (re.search(pattern, value) is not None) is matched


ATOMS = st.sampled_from(["a", "b", "-", ".", "[ab]", "[^a]", "\\d", "\\w", "(a|b)", "(?:ab)", "x"])
QUANT = st.sampled_from(["", "", "*", "+", "?", "{1,2}", "*?"])
ANCHOR = st.sampled_from(["", "^"]), st.sampled_from(["", "$"])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    body = "".join(draw(ATOMS) + draw(QUANT) for _ in range(draw(st.integers(1, 4))))
    if draw(st.booleans()):
        body = f"{body}|{draw(ATOMS)}"
    return draw(ANCHOR[0]) + body + draw(ANCHOR[1])


@settings(max_examples=300, deadline=None)
@given(pattern=patterns(), value=st.text(alphabet="ab-x1_ ", max_size=8))
def test_wrapping_keeps_search_semantics(pattern: str, value: str) -> None:
    regex, problem = to_re2(pattern)
    assert problem is None and regex is not None
    assert (re2.fullmatch(regex, value) is not None) == (re.search(pattern, value) is not None)
