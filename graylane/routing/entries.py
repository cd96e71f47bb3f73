"""What a route table is made of: compiled routes, their decisions and *entries* (:mod:`.table`).

A CanaryRoute's decisions are precomputed per route (:func:`compile_route`); an entry is one way into a
route -- a path test, further conditions, and for a Gateway API rule its :class:`HttpAction` (a weighted
pick among precomputed decisions, or one fixed decision: a redirect or a 500).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graylane.config.model import Match, PathMatch, Redirect, RouteConfig, Track
from graylane.lru import Lru
from graylane.routing import matchers, sticky
from graylane.routing.mirror import MirrorPlan
from graylane.routing.request import CountrySource, RequestView

_PREDICATES: Lru[tuple[Match, object], tuple[matchers.Predicate, ...]] = Lru(4096)
_STICKY: Lru[tuple[str, ...], tuple[tuple[str, sticky.KeyExtractor], ...]] = Lru(1024)

Reason = (
    str  # "version-header" | "rule:<name>" | "sticky" | "random" | "fallback" | "stable" | "backend" | ...
)


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """Where one request goes. Decisions are precomputed per route; compare them by value of the fields.

    ``track`` is ``stable``/``canary`` for a CanaryRoute, ``rule-<i>`` for a Gateway API rule. A non-zero
    ``status`` means the proxy answers itself: 500 (no valid backend) or ``redirect``'s code."""

    route: CompiledRoute
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


@dataclass(eq=False, slots=True)
class CompiledRoute:
    """One route ready for the hot path. Built by :meth:`RouteTable.build`; treat as read-only."""

    config: RouteConfig
    key: str
    prefix: str  # normalised: "/" or without trailing slash
    rules: tuple[CompiledRule, ...] = ()
    version_header: str | None = None  # lower-case
    version_map: Mapping[str, Decision] = field(default_factory=dict)
    sticky_keys: tuple[tuple[str, sticky.KeyExtractor], ...] = ()
    threshold: int = 0  # canary buckets: round(weight * 100)
    salt_prefix: bytes = b""
    mirror: MirrorPlan | None = None  # shadow traffic (``mirror.py``); None: nothing is mirrored
    # Set by compile_route right after construction (a Decision refers to its route):
    stable_decision: Decision = field(init=False)
    sticky_decisions: tuple[Decision, Decision] = field(init=False)  # (stable, canary)
    random_decisions: tuple[Decision, Decision] = field(init=False)

    def matches_path(self, path: str) -> bool:
        prefix = self.prefix
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    def decision_for(self, track: Track, reason: Reason) -> Decision:
        """A decision for ``track`` with any reason (e.g. "fallback" when the proxy retries on stable)."""
        upstream = self.config.canary if track == "canary" else self.config.stable
        return Decision(route=self, track=track, upstream=upstream, reason=reason)


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
    route.stable_decision = route.decision_for("stable", "stable")
    route.sticky_decisions = (route.decision_for("stable", "sticky"), route.decision_for("canary", "sticky"))
    route.random_decisions = (route.decision_for("stable", "random"), route.decision_for("canary", "random"))
    route.rules = tuple(
        CompiledRule(
            name=rule.name,
            to=rule.to,
            predicates=shared_match(rule.match, countries),
            decision=route.decision_for(rule.to, f"rule:{rule.name}"),
        )
        for rule in config.rules
    )
    vr = config.version_routing
    if vr is not None:
        route.version_header = vr.header.lower()
        route.version_map = _version_map(route, config, vr.metadata_key, vr.candidates)
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


def shared_match(match: Match, countries: CountrySource | None) -> tuple[matchers.Predicate, ...]:
    """``match`` compiled, one copy for every route with an equal block (the same QA rule everywhere)."""
    key = (match, countries)
    found = _PREDICATES.get(key)
    if found is None:
        found = matchers.compile_match(match, countries=countries)
        _PREDICATES.put(key, found)
    return found


def _version_map(
    route: CompiledRoute, config: RouteConfig, key: str, candidates: Iterable[str]
) -> dict[str, Decision]:
    out: dict[str, Decision] = {}
    for name in candidates:
        tag = config.upstreams[name].metadata.get(key)
        if tag is not None:
            track: Track = "stable" if name == config.stable else "canary"
            out[tag] = Decision(route=route, track=track, upstream=name, reason="version-header")
    return out
