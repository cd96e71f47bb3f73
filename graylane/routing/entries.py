"""What a route table is made of: compiled routes, their decisions and *entries* (:mod:`.table`).

A CanaryRoute's decisions are precomputed and shared: one :class:`Decision` per (track, reason) for every
route (the route is known from the entry that matched, its upstream from the track), so a route holds
decision objects only for its ``versionRouting`` candidates; the compiled rules of equal ``rules`` blocks
are shared too. An entry is one way into a route -- a path test, further conditions, and for a Gateway API
rule its :class:`HttpAction` (a weighted pick among precomputed decisions, or one fixed decision: a redirect
or a 500).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from graylane.config.model import Match, PathMatch, Redirect, RouteConfig, Rule, Track
from graylane.lru import Lru
from graylane.routing import matchers, sticky
from graylane.routing.mirror import MirrorPlan
from graylane.routing.request import CountrySource, RequestView

_PREDICATES: Lru[tuple[Match, object], tuple[matchers.Predicate, ...]] = Lru(4096)
_STICKY: Lru[tuple[str, ...], tuple[tuple[str, sticky.KeyExtractor], ...]] = Lru(1024)
_RULES: Lru[tuple[tuple[Rule, ...], object], tuple[CompiledRule, ...]] = Lru(4096)
_DECISIONS: Lru[tuple[str, str], Decision] = Lru(4096)

Reason = (
    str  # "version-header" | "rule:<name>" | "sticky" | "random" | "fallback" | "stable" | "backend" | ...
)


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """Where one request goes. Decisions are precomputed; compare them by value of the fields.

    ``track`` is ``stable``/``canary`` for a CanaryRoute, ``rule-<i>`` for a Gateway API rule. ``upstream``
    is the upstream the decision names itself (a Gateway API backend, a ``versionRouting`` candidate); ""
    for a CanaryRoute's track decisions, shared by every route: their upstream is the route's ``stable`` or
    ``canary`` (:meth:`CompiledRoute.upstream_of`). A non-zero ``status`` means the proxy answers itself:
    500 (no valid backend) or ``redirect``'s code."""

    track: str
    upstream: str
    reason: Reason
    status: int = 0
    redirect: Redirect | None = None
    matched: str = ""  # the matched path prefix (a redirect's or rewrite's ReplacePrefixMatch)
    rewrite: PathMatch | None = None  # a URLRewrite's path for the upstream


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    name: str
    to: Track
    predicates: tuple[matchers.Predicate, ...]
    decision: Decision


NO_VERSIONS: Mapping[str, Decision] = MappingProxyType({})  # a route without versionRouting
STABLE = Decision(track="stable", upstream="", reason="stable")  # weight 0: no split
STICKY = (Decision("stable", "", "sticky"), Decision("canary", "", "sticky"))  # by ``bucket < threshold``
RANDOM = (Decision("stable", "", "random"), Decision("canary", "", "random"))


@dataclass(eq=False, slots=True)
class CompiledRoute:
    """One route ready for the hot path. Built by :meth:`RouteTable.build`; treat as read-only."""

    config: RouteConfig
    key: str
    prefix: str  # normalised: "/" or without trailing slash
    rules: tuple[CompiledRule, ...] = ()
    version_header: str | None = None  # lower-case
    version_map: Mapping[str, Decision] = field(default_factory=lambda: NO_VERSIONS)
    sticky_keys: tuple[tuple[str, sticky.KeyExtractor], ...] = ()
    threshold: int = 0  # canary buckets: round(weight * 100)
    salt_prefix: bytes = b""
    mirror: MirrorPlan | None = None  # shadow traffic (``mirror.py``); None: nothing is mirrored
    # the shared decisions, held by the route so that decide reads attributes, not module globals
    stable_decision: Decision = STABLE
    sticky_decisions: tuple[Decision, Decision] = STICKY  # (stable, canary)
    random_decisions: tuple[Decision, Decision] = RANDOM

    def matches_path(self, path: str) -> bool:
        prefix = self.prefix
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    def upstream_of(self, decision: Decision) -> str:
        """The upstream ``decision`` sends to on this route: the one it names, else the track's."""
        upstream = decision.upstream
        if upstream:
            return upstream
        return self.config.canary if decision.track == "canary" else self.config.stable


def track_decision(track: Track, reason: Reason) -> Decision:
    """The decision for ``track`` with ``reason`` (e.g. "fallback" when the proxy retries on stable), one
    object for every route."""
    key = (track, reason)
    found = _DECISIONS.get(key)
    if found is None:
        found = Decision(track=track, upstream="", reason=reason)
        _DECISIONS.put(key, found)
    return found


class HttpAction:
    """What a Gateway API entry does: a weighted pick among its decisions, or one fixed decision."""

    __slots__ = ("bounds", "fixed", "picks", "total")

    def __init__(self, picks: tuple[tuple[Decision, int], ...], fixed: Decision | None) -> None:
        self.picks = tuple(d for d, w in picks if w > 0)
        self.bounds = tuple(itertools.accumulate(w for _, w in picks if w > 0))
        self.total = self.bounds[-1] if self.bounds else 0
        self.fixed = fixed

    def decide(self, view: RequestView, sample: float) -> Decision:
        """The decision for a request (a TrafficPolicy's action also looks at ``view``)."""
        return self.pick(sample)

    def pick(self, sample: float) -> Decision:
        """``sample`` in [0, 1): the backend whose share of the cumulative weights it falls in."""
        fixed = self.fixed
        if fixed is not None:
            return fixed
        picks = self.picks
        if len(picks) == 1:
            return picks[0]
        point = int(sample * self.total)
        for i, bound in enumerate(self.bounds):
            if point < bound:
                return picks[i]
        return picks[-1]


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """One way into a route: a path test (``kind`` Exact, PathPrefix or RegularExpression), further
    conditions (AND) and, for a Gateway API rule, its action (``None``: the CanaryRoute decision)."""

    route: CompiledRoute
    kind: str
    path: str
    predicates: tuple[matchers.Predicate, ...] = ()
    action: HttpAction | None = None
    rank: tuple[Any, ...] = ()
    regex: Callable[[str], Any] | None = None

    @property
    def key(self) -> str:
        return self.route.key

    def accepts(self, path: str, view: RequestView | None) -> bool:
        kind = self.kind
        if kind == "PathPrefix":
            prefix = self.path
            if not (prefix == "/" or path == prefix or path.startswith(prefix + "/")):
                return False
        elif kind == "Exact":
            if path != self.path:
                return False
        elif self.regex is None or self.regex(path) is None:
            return False
        if self.predicates:
            if view is None:
                return False
            for predicate in self.predicates:
                if not predicate(view):
                    return False
        return True


def rank(
    kind: str, path: str, methods: int, headers: int, query: int, route: RouteConfig, order: int
) -> tuple[Any, ...]:
    """The precedence of an entry inside a host tier (smaller first)."""
    kind_rank = {"Exact": 0, "PathPrefix": 1}.get(kind, 2)
    return (kind_rank, -len(path), -min(methods, 1), -headers, -query, route.route.created, route.key, order)


def compile_route(config: RouteConfig, *, countries: CountrySource | None = None) -> CompiledRoute:
    prefix = config.path_prefix.rstrip("/") or "/"
    route = CompiledRoute(config=config, key=config.route.key, prefix=prefix)
    route.rules = shared_rules(config.rules, countries)
    vr = config.version_routing
    if vr is not None:
        route.version_header = vr.header.lower()
        route.version_map = _version_map(config, vr.metadata_key, vr.candidates)
    if config.sticky is not None:
        keys = config.sticky.keys
        found = _STICKY.get(keys)
        if found is None:
            found = sticky.compile_keys(keys)
            _STICKY.put(keys, found)
        route.sticky_keys = found
    route.threshold = sticky.threshold(config.weight)
    route.salt_prefix = sticky.salt_prefix(config.salt)
    if config.mirror is not None:
        route.mirror = MirrorPlan.compile(config.mirror, config.salt)
    return route


def shared_rules(rules: tuple[Rule, ...], countries: CountrySource | None) -> tuple[CompiledRule, ...]:
    """``rules`` compiled, one copy for every route with an equal block (its decisions name no route)."""
    if not rules:
        return ()
    key = (rules, countries)
    found = _RULES.get(key)
    if found is None:
        found = tuple(
            CompiledRule(
                name=rule.name,
                to=rule.to,
                predicates=shared_match(rule.match, countries),
                decision=track_decision(rule.to, f"rule:{rule.name}"),
            )
            for rule in rules
        )
        _RULES.put(key, found)
    return found


def shared_match(match: Match, countries: CountrySource | None) -> tuple[matchers.Predicate, ...]:
    """``match`` compiled, one copy for every route with an equal block (the same QA rule everywhere)."""
    key = (match, countries)
    found = _PREDICATES.get(key)
    if found is None:
        found = matchers.compile_match(match, countries=countries)
        _PREDICATES.put(key, found)
    return found


def _version_map(config: RouteConfig, key: str, candidates: Iterable[str]) -> dict[str, Decision]:
    out: dict[str, Decision] = {}
    for name in candidates:
        tag = config.upstreams[name].metadata.get(key)
        if tag is not None:
            track: Track = "stable" if name == config.stable else "canary"
            out[tag] = Decision(track=track, upstream=name, reason="version-header")
    return out
