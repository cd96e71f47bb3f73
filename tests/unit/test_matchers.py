"""Table tests for every matcher: string operators with invert and missing values, and each source."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.config.model import StringMatch
from graylane.routing import matchers
from graylane.routing.geo import CountryResolver
from tests.unit.views import view


def sm(op: str, value: Any = None, *, invert: bool = False, name: str | None = "X-Test") -> StringMatch:
    if op == "in":
        return StringMatch(op="in", values=tuple(value), invert=invert, name=name)
    return StringMatch(op=op, value=value or "", invert=invert, name=name)  # type: ignore[arg-type]


# --- string operators: (matcher, value, expected); None = the value is missing --------------------
STRING_CASES = [
    # exact
    ("exact-equal", sm("exact", "true"), "true", True),
    ("exact-case-sensitive", sm("exact", "true"), "True", False),
    ("exact-empty-matches-empty", sm("exact", ""), "", True),
    ("exact-missing", sm("exact", "true"), None, False),
    ("exact-invert-equal", sm("exact", "true", invert=True), "true", False),
    ("exact-invert-other", sm("exact", "true", invert=True), "false", True),
    ("exact-invert-missing-is-true", sm("exact", "true", invert=True), None, True),
    # prefix
    ("prefix-hit", sm("prefix", "beta-"), "beta-7", True),
    ("prefix-whole", sm("prefix", "beta-"), "beta-", True),
    ("prefix-miss", sm("prefix", "beta-"), "alpha-beta-", False),
    ("prefix-missing", sm("prefix", "beta-"), None, False),
    ("prefix-invert-missing", sm("prefix", "beta-", invert=True), None, True),
    # suffix
    ("suffix-hit", sm("suffix", "@example.com"), "a@example.com", True),
    ("suffix-miss", sm("suffix", "@example.com"), "a@example.com.evil", False),
    ("suffix-missing", sm("suffix", "x"), None, False),
    # regex: full match, RE2
    ("regex-full-match", sm("regex", "v[0-9]+"), "v12", True),
    ("regex-not-partial", sm("regex", "v[0-9]+"), "xv12", False),
    ("regex-not-partial-tail", sm("regex", "v[0-9]+"), "v12x", False),
    ("regex-alternation-anchored", sm("regex", "a|b"), "ab", False),
    ("regex-case-flag", sm("regex", "(?i)beta"), "BETA", True),
    ("regex-missing", sm("regex", ".*"), None, False),
    ("regex-empty-value", sm("regex", ".*"), "", True),
    ("regex-invert", sm("regex", "v[0-9]+", invert=True), "v1", False),
    ("regex-catastrophic-is-linear", sm("regex", "(a+)+$"), "a" * 50_000 + "b", False),
    ("regex-unicode", sm("regex", "é+"), "éé", True),
    ("regex-non-utf8-byte-never-matches", sm("regex", ".*"), "a\udcffb", False),
    ("regex-non-utf8-byte-invert", sm("regex", ".*", invert=True), "a\udcffb", True),
    ("exact-non-utf8-byte", sm("exact", "a\udcffb"), "a\udcffb", True),
    # present
    ("present-any", sm("present"), "x", True),
    ("present-empty-value", sm("present"), "", True),
    ("present-missing", sm("present"), None, False),
    ("present-invert-missing", sm("present", invert=True), None, True),
    ("present-invert-present", sm("present", invert=True), "x", False),
    # in
    ("in-member", sm("in", ["a", "b"]), "b", True),
    ("in-non-member", sm("in", ["a", "b"]), "c", False),
    ("in-missing", sm("in", ["a"]), None, False),
    ("in-invert-missing", sm("in", ["a"], invert=True), None, True),
    ("in-invert-non-member", sm("in", ["a"], invert=True), "z", True),
]


@pytest.mark.parametrize(
    ("m", "value", "expected"), [c[1:] for c in STRING_CASES], ids=[c[0] for c in STRING_CASES]
)
def test_string_operator(m: StringMatch, value: str | None, expected: bool) -> None:
    assert matchers.string_test(m)(value) is expected


# --- headers: case-insensitive names, first value -------------------------------------------------
HEADER_CASES = [
    ("name-case-insensitive", sm("exact", "1", name="X-Canary"), {"x-canary": "1"}, True),
    ("name-upper-request", sm("exact", "1", name="x-canary"), {"X-CANARY": "1"}, True),
    ("value-case-sensitive", sm("exact", "on", name="X-Canary"), {"X-Canary": "ON"}, False),
    ("missing-header", sm("exact", "1", name="X-Canary"), {}, False),
    ("invert-missing-header", sm("exact", "1", name="X-Canary", invert=True), {}, True),
    ("empty-header-present", sm("present", name="X-Canary"), {"X-Canary": ""}, True),
]


@pytest.mark.parametrize(
    ("m", "headers", "expected"), [c[1:] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES]
)
def test_header(m: StringMatch, headers: dict[str, str], expected: bool) -> None:
    assert matchers.header_predicate(m)(view(headers=headers)) is expected


def test_header_first_value_wins() -> None:
    pred = matchers.header_predicate(sm("exact", "1", name="X-A"))
    assert pred(view(headers=[("X-A", "1"), ("X-A", "2")]))
    assert not pred(view(headers=[("X-A", "2"), ("X-A", "1")]))


# --- query ----------------------------------------------------------------------------------------
QUERY_CASES = [
    ("plain", sm("exact", "true", name="use_canary"), "use_canary=true", True),
    ("first-of-duplicates", sm("exact", "1", name="a"), "a=1&a=2", True),
    ("second-of-duplicates-ignored", sm("exact", "2", name="a"), "a=1&a=2", False),
    ("percent-encoded-key", sm("exact", "1", name="a"), "%61=1", True),
    ("plus-is-space", sm("exact", "a b", name="q"), "q=a+b", True),
    ("percent-20-is-space", sm("exact", "a b", name="q"), "q=a%20b", True),
    ("semicolon-is-not-a-separator", sm("exact", "1", name="b"), "a=1;b=1", False),
    ("name-case-sensitive", sm("present", name="A"), "a=1", False),
    ("no-value-is-empty", sm("exact", "", name="flag"), "flag", True),
    ("missing", sm("present", name="a"), "", False),
    ("invert-missing", sm("present", name="a", invert=True), "b=1", True),
]


@pytest.mark.parametrize(
    ("m", "query", "expected"), [c[1:] for c in QUERY_CASES], ids=[c[0] for c in QUERY_CASES]
)
def test_query(m: StringMatch, query: str, expected: bool) -> None:
    assert matchers.query_predicate(m)(view(query=query)) is expected


# --- cookies --------------------------------------------------------------------------------------
COOKIE_CASES = [
    ("plain", sm("exact", "abc", name="session"), "a=1; session=abc", True),
    ("quoted", sm("exact", "abc", name="session"), 'session="abc"', True),
    ("first-wins", sm("exact", "1", name="s"), "s=1; s=2", True),
    ("name-case-sensitive", sm("present", name="Session"), "session=1", False),
    ("no-equals-ignored", sm("present", name="flag"), "flag; a=1", False),
    ("missing", sm("present", name="s"), "a=1", False),
]


@pytest.mark.parametrize(
    ("m", "cookie", "expected"), [c[1:] for c in COOKIE_CASES], ids=[c[0] for c in COOKIE_CASES]
)
def test_cookie(m: StringMatch, cookie: str, expected: bool) -> None:
    assert matchers.cookie_predicate(m)(view(headers={"Cookie": cookie})) is expected


def test_cookie_without_cookie_header() -> None:
    assert not matchers.cookie_predicate(sm("present", name="s"))(view())


# --- verified JWT claims --------------------------------------------------------------------------
CLAIM_CASES = [
    ("string", sm("exact", "u-1", name="sub"), {"sub": "u-1"}, True),
    ("list-any-element", sm("in", ["beta-tester"], name="role"), {"role": ["user", "beta-tester"]}, True),
    ("list-no-element", sm("in", ["beta-tester"], name="role"), {"role": ["user"]}, False),
    ("list-invert", sm("exact", "beta", name="role", invert=True), {"role": ["user", "beta"]}, False),
    ("empty-list-is-missing", sm("present", name="role"), {"role": []}, False),
    ("integer-as-decimal", sm("exact", "42", name="tier"), {"tier": 42}, True),
    ("bool-as-true", sm("exact", "true", name="beta"), {"beta": True}, True),
    ("bool-not-string-True", sm("exact", "True", name="beta"), {"beta": True}, False),
    ("object-is-missing", sm("present", name="org"), {"org": {"id": 1}}, False),
    ("float-is-missing", sm("present", name="score"), {"score": 1.5}, False),
    ("missing-claim", sm("exact", "x", name="sub"), {}, False),
    ("invert-missing-claim", sm("exact", "x", name="sub", invert=True), {}, True),
]


@pytest.mark.parametrize(
    ("m", "claims", "expected"), [c[1:] for c in CLAIM_CASES], ids=[c[0] for c in CLAIM_CASES]
)
def test_claim(m: StringMatch, claims: dict[str, Any], expected: bool) -> None:
    assert matchers.claim_predicate(m)(view(claims=claims)) is expected


def test_claim_without_verified_token_is_missing() -> None:
    assert not matchers.claim_predicate(sm("present", name="sub"))(view())
    assert matchers.claim_predicate(sm("present", name="sub", invert=True))(view())


def test_claims_are_asked_once_per_request() -> None:
    calls = []

    def claims() -> dict[str, Any]:
        calls.append(1)
        return {"sub": "u"}

    from graylane.routing.request import Headers, RequestView

    v = RequestView(method="GET", host="h", path="/", headers=Headers(), client_ip=None, claims=claims)
    for _ in range(3):
        assert matchers.claim_predicate(sm("exact", "u", name="sub"))(v)
    assert calls == [1]


# --- source CIDRs ---------------------------------------------------------------------------------
CIDRS = ["203.0.113.0/24", "10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"]
CIDR_CASES = [
    ("v4-inside", "203.0.113.77", True),
    ("v4-first", "203.0.113.0", True),
    ("v4-last", "203.0.113.255", True),
    ("v4-below", "203.0.112.255", False),
    ("v4-above", "203.0.114.0", False),
    ("v4-single-host", "192.0.2.1", True),
    ("v4-next-to-single-host", "192.0.2.2", False),
    ("v4-mapped-v6", "::ffff:10.1.2.3", True),
    ("v6-inside", "2001:db8:1::5", True),
    ("v6-outside", "2001:db9::1", False),
    ("v6-same-int-as-v4-no-cross-match", "::a00:1", False),
    ("missing-ip", None, False),
    ("garbage-ip", "not-an-ip", False),
    ("obfuscated-ip", "0x7f.1", False),
]


@pytest.mark.parametrize(("ip", "expected"), [c[1:] for c in CIDR_CASES], ids=[c[0] for c in CIDR_CASES])
def test_cidr(ip: str | None, expected: bool) -> None:
    assert matchers.cidr_predicate(CIDRS)(view(client_ip=ip)) is expected


def test_mapped_v6_cidr_matches_plain_v4() -> None:
    assert matchers.cidr_predicate(["::ffff:10.0.0.0/104"])(view(client_ip="10.9.9.9"))


def test_cidr_set_merges_overlaps() -> None:
    cs = matchers.CidrSet(["10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/16"])
    assert (4, int.from_bytes(bytes([10, 200, 0, 1]))) in cs
    assert (4, int.from_bytes(bytes([11, 0, 0, 0]))) not in cs


# --- countries, methods, path ---------------------------------------------------------------------
class FixedLookup:
    def country(self, ip: str) -> str | None:
        return {"81.2.69.160": "GB", "2001:db8::1": "DE"}.get(ip)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("81.2.69.160", True), ("2001:db8::1", True), ("8.8.8.8", False), (None, False)],
    ids=["gb", "de-v6", "unknown", "no-ip"],
)
def test_country(ip: str | None, expected: bool) -> None:
    pred = matchers.country_predicate(["GB", "DE"], CountryResolver(FixedLookup()))
    assert pred(view(client_ip=ip)) is expected


def test_country_without_data_never_matches() -> None:
    assert not matchers.country_predicate(["GB"], None)(view(client_ip="81.2.69.160"))


@pytest.mark.parametrize(
    ("method", "expected"), [("GET", True), ("POST", True), ("get", False), ("DELETE", False)]
)
def test_method(method: str, expected: bool) -> None:
    assert matchers.method_predicate(["GET", "POST"])(view(method=method)) is expected


@pytest.mark.parametrize(
    ("m", "path", "expected"),
    [
        (sm("prefix", "/api/", name=None), "/api/x", True),
        (sm("prefix", "/api/", name=None), "/apix", False),
        (sm("regex", "/users/[0-9]+", name=None), "/users/12", True),
        (sm("regex", "/users/[0-9]+", name=None), "/users/12/edit", False),
        (sm("exact", "/health", name=None, invert=True), "/health", False),
    ],
)
def test_path(m: StringMatch, path: str, expected: bool) -> None:
    assert matchers.path_predicate(m)(view(path=path)) is expected
