"""One path normalisation for routing and forwarding (graylane.routing.pathnorm, RFC 3986 §6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graylane.routing.pathnorm import decoded, normalize_path, remove_dot_segments

NORMALISED = [
    ("/", "/"),
    ("/admin", "/admin"),
    ("/%61dmin", "/admin"),
    ("/x/../admin", "/admin"),
    ("/x/%2e%2E/admin", "/admin"),
    ("/./a/./b", "/a/b"),
    ("/a/b/..", "/a/"),
    ("/a/b/.", "/a/b/"),
    ("/../../a", "/a"),
    ("/..", "/"),
    ("/a//b", "/a//b"),  # empty segments are kept (not a dot segment)
    ("/a%20b", "/a%20b"),  # reserved / other escapes stay encoded
    ("/a%7e%7E", "/a~~"),
    ("/%c3%a9", "/%C3%A9"),  # hex digits upper-cased
    ("/.well-known/x", "/.well-known/x"),
    ("/a..b/c", "/a..b/c"),
]
REFUSED = ["admin", "", "/a%2Fb", "/a%2fb", "/a%5Cb", "/a%00", "/%zz", "/%4", "/a%", "*"]


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalises(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("raw", REFUSED)
def test_refuses(raw: str) -> None:
    assert normalize_path(raw) is None


SEGMENT = st.one_of(
    st.sampled_from([".", "..", "%2e", "%2E%2e", "", "a", "%61", "b~", "%7E", "%20", "%C3%A9"]),
    st.text(st.characters(whitelist_categories=("Ll", "Nd")), max_size=4),
)
PATHS = st.lists(SEGMENT, max_size=8).map(lambda segs: "/" + "/".join(segs))


@given(PATHS)
def test_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalize_path(raw)
    assert once is not None and normalize_path(once) == once


@given(PATHS)
def test_no_dot_segment_survives_and_decoding_has_none_either(raw: str) -> None:
    once = normalize_path(raw)
    assert once is not None
    for path in (once, decoded(once)):
        segments = path.split("/")[1:]
        assert "." not in segments and ".." not in segments


@given(PATHS)
def test_remove_dot_segments_never_climbs_above_the_root(raw: str) -> None:
    assert remove_dot_segments(raw).startswith("/")
