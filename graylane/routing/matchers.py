"""Matchers compiled once from a rule's ``match`` block; each is a small callable over a :class:`RequestView`.

String operators (docs/route-config.md): ``exact``, ``prefix``, ``suffix``, ``regex`` (RE2, full match),
``present``, ``in``; ``invert`` negates the result. A matcher on a missing value is false before ``invert``,
so ``invert`` of a missing header is true. A list claim matches when any element matches (``invert`` then
negates that). Claims of other types than string, integer and boolean count as missing. A value that is
not valid UTF-8 (aiohttp surrogate-escapes such header bytes) never matches a regex.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graylane.config.matchblock import compile_regex, parse_cidr
from graylane.config.model import Match, StringMatch
from graylane.routing.request import CountrySource, IpKey, RequestView

ValueTest = Callable[[str | None], bool]
Predicate = Callable[[RequestView], bool]


def string_test(m: StringMatch) -> ValueTest:
    """The value test of one string matcher, ``invert`` included."""
    base = _base_test(m)
    if not m.invert:
        return base
    return lambda v: not base(v)


def _base_test(m: StringMatch) -> ValueTest:
    op = m.op
    if op == "exact":
        exact = m.value
        return lambda v: v == exact
    if op == "prefix":
        prefix = m.value
        return lambda v: v is not None and v.startswith(prefix)
    if op == "suffix":
        suffix = m.value
        return lambda v: v is not None and v.endswith(suffix)
    if op == "regex":
        return _regex_test(compile_regex(m.value).fullmatch)
    if op == "present":
        return lambda v: v is not None
    if op == "in":
        values = frozenset(m.values)
        return lambda v: v in values
    raise ValueError(f"unknown string operator {op!r}")


def _regex_test(fullmatch: Callable[[str], Any]) -> ValueTest:
    def test(v: str | None) -> bool:
        if v is None:
            return False
        try:
            return fullmatch(v) is not None
        except UnicodeEncodeError:  # a header byte that was not UTF-8 (surrogate-escaped): never a match
            return False

    return test


def header_predicate(m: StringMatch) -> Predicate:
    name = (m.name or "").lower()
    if not m.invert and m.op in ("exact", "prefix", "present"):  # the common ones: one call, not two
        return _fused_header(name, m.op, m.value or "")
    test = string_test(m)
    return lambda view: test(view.headers.get(name))


def _fused_header(name: str, op: str, value: str) -> Predicate:
    if op == "exact":
        return lambda view: view.headers.get(name) == value
    if op == "prefix":
        return lambda view: (v := view.headers.get(name)) is not None and v.startswith(value)
    return lambda view: view.headers.get(name) is not None


def query_predicate(m: StringMatch) -> Predicate:
    name = m.name or ""
    test = string_test(m)
    return lambda view: test(view.query().get(name))


def cookie_predicate(m: StringMatch) -> Predicate:
    name = m.name or ""
    test = string_test(m)
    return lambda view: test(view.cookies().get(name))


def claim_text(value: Any) -> str | None:
    """A claim value as the string a matcher sees: str as is, int in decimal, bool as true/false."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None


def claim_predicate(m: StringMatch) -> Predicate:
    name = m.name or ""
    base = _base_test(m)
    invert = m.invert

    def test(view: RequestView) -> bool:
        claims = view.claims()
        value = claims.get(name) if claims is not None else None
        if isinstance(value, list):
            matched = False
            for item in value:
                text = claim_text(item)
                if text is not None and base(text):
                    matched = True
                    break
        else:
            text = claim_text(value)
            matched = text is not None and base(text)
        return matched != invert

    return test


class CidrSet:
    """IPv4 and IPv6 networks as sorted, merged integer ranges; membership is a bisect."""

    __slots__ = ("_his", "_los")

    def __init__(self, cidrs: Iterable[str]) -> None:
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in cidrs:
            net = parse_cidr(text)
            lo, hi = int(net.network_address), int(net.broadcast_address)
            if net.version == 6 and _is_v4_mapped_net(lo, hi):
                ranges[4].append((lo & 0xFFFFFFFF, hi & 0xFFFFFFFF))
            else:
                ranges[net.version].append((lo, hi))
        self._los: dict[int, list[int]] = {}
        self._his: dict[int, list[int]] = {}
        for version, spans in ranges.items():
            merged = _merge(spans)
            self._los[version] = [lo for lo, _ in merged]
            self._his[version] = [hi for _, hi in merged]

    def __contains__(self, key: IpKey | None) -> bool:
        if key is None:
            return False
        version, value = key
        los = self._los[version]
        i = bisect.bisect_right(los, value) - 1
        return i >= 0 and value <= self._his[version][i]


def _is_v4_mapped_net(lo: int, hi: int) -> bool:
    base = 0xFFFF << 32
    return lo >> 32 == 0xFFFF and hi >> 32 == 0xFFFF and lo >= base


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def cidr_predicate(cidrs: Iterable[str]) -> Predicate:
    networks = CidrSet(cidrs)
    return lambda view: view.ip_key() in networks


def country_predicate(codes: Iterable[str], source: CountrySource | None) -> Predicate:
    wanted = frozenset(codes)
    if source is None:  # no country data configured: the condition cannot hold
        return lambda view: False
    return lambda view: view.country(source) in wanted


def method_predicate(methods: Iterable[str]) -> Predicate:
    wanted = frozenset(methods)
    return lambda view: view.method in wanted


def path_predicate(m: StringMatch) -> Predicate:
    test = string_test(m)
    return lambda view: test(view.path)


def compile_match(match: Match, *, countries: CountrySource | None = None) -> tuple[Predicate, ...]:
    """All conditions of one ``match`` block (AND), cheapest first."""
    preds: list[Predicate] = []
    if match.methods:
        preds.append(method_predicate(match.methods))
    if match.path is not None:
        preds.append(path_predicate(match.path))
    preds.extend(header_predicate(m) for m in match.headers)
    if match.source_cidrs:
        preds.append(cidr_predicate(match.source_cidrs))
    preds.extend(query_predicate(m) for m in match.query)
    preds.extend(cookie_predicate(m) for m in match.cookies)
    if match.source_countries:
        preds.append(country_predicate(match.source_countries, countries))
    preds.extend(claim_predicate(m) for m in match.jwt_claims)  # last: may verify a token
    return tuple(preds)


def describe(match: Match) -> Mapping[str, int]:
    """How many conditions of each kind a match holds (for /routes and /explain)."""
    return {
        "headers": len(match.headers),
        "query": len(match.query),
        "cookies": len(match.cookies),
        "jwtClaims": len(match.jwt_claims),
        "sourceCIDRs": len(match.source_cidrs),
        "sourceCountries": len(match.source_countries),
        "methods": len(match.methods),
        "path": int(match.path is not None),
    }
