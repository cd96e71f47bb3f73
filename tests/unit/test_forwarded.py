"""RFC 7239 ``Forwarded`` parsing (graylane.routing.forwarded): strict; unparseable means untrusted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graylane.routing.forwarded import format_forwarded, parse_forwarded

PARSED = [
    (
        "for=192.0.2.60;proto=http;by=203.0.113.43",
        [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
    ),
    ('for="_gazonk"', [{"for": "_gazonk"}]),
    ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
    ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
    ("for=a ;  by=b ,for=c", [{"for": "a", "by": "b"}, {"for": "c"}]),
    ('for="a\\"b"', [{"for": 'a"b'}]),
    ('for="a,b;c"', [{"for": "a,b;c"}]),
    ("for=a,, ,for=b", [{"for": "a"}, {"for": "b"}]),  # empty list elements are skipped (RFC 9110 §5.6.1)
    ("for=a;;by=b", [{"for": "a", "by": "b"}]),
    ("", []),
]
REFUSED = [
    ('for=203.0.113.5;by="x, for=198.51.100.7', "unbalanced quote"),
    ("for=a;for=b", "repeated parameter"),
    ("for=a;FOR=b", "repeated parameter, any case"),
    ('for="a"b', "bytes after the closing quote"),
    ("for", "no ="),
    ("for=", "empty value"),
    ("=a", "empty name"),
    ("f r=a", "space in a name"),
    ("for=a b", "space in a bare value"),
    ("for = a", "space around ="),
    ('for="a\x01"', "a control character"),
    ('for="a\\', "an escape at the end"),
    ("for=[::1]", "brackets need quotes"),
    (", ".join(["for=a"] * 300), "too many elements"),
]


@pytest.mark.parametrize(("header", "expected"), PARSED)
def test_parses(header: str, expected: list[dict[str, str]]) -> None:
    assert parse_forwarded(header) == expected


@pytest.mark.parametrize(("header", "why"), REFUSED, ids=[r[1] for r in REFUSED])
def test_refuses(header: str, why: str) -> None:
    assert parse_forwarded(header) is None, why


NAMES = st.sampled_from(["for", "by", "proto", "host", "x-ext"])
VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)
ELEMENTS = st.lists(st.dictionaries(NAMES, VALUES, min_size=1, max_size=4), max_size=6)


@given(ELEMENTS)
def test_format_then_parse_is_the_identity(elements: list[dict[str, str]]) -> None:
    assert parse_forwarded(format_forwarded(elements)) == elements


@given(st.text(max_size=60))
def test_never_raises_and_what_parses_formats_back_the_same(header: str) -> None:
    parsed = parse_forwarded(header)
    if parsed is not None:
        assert parse_forwarded(format_forwarded(parsed)) == parsed
