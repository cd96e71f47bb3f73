"""A Gateway API document's ``httpRules`` as table entries, and the ``Location`` of a RequestRedirect.

Each (rule, match) is one :class:`Entry`; its action picks a backend by weight (``weight / total``), answers
500 for the share of an invalid backend (``upstream: null``) or when nothing can be picked, or redirects.
Decisions are precomputed: the pick allocates nothing. Track labels are ``rule-<i>`` (metrics, header plans).

A rule with a TrafficPolicy's ``pins`` or ``sticky`` gets a :class:`PolicyAction`: the first pin whose
match holds sends the request to its backend (reason ``pin:<name>``, whatever the weights); then the first
present sticky key picks the backend of its bucket in the monotone split (reason ``sticky``,
:func:`graylane.routing.sticky.monotone_ranges`); without one, the weighted pick as before.
"""

from __future__ import annotations

import bisect
from typing import Any

from graylane.config.matchblock import compile_regex
from graylane.config.model import Backend, HttpRule, PathMatch
from graylane.routing import matchers, sticky
from graylane.routing.entries import CompiledRoute, Decision, Entry, HttpAction, rank, shared_match
from graylane.routing.filters import replace_path
from graylane.routing.request import CountrySource, RequestView

WELL_KNOWN_PORTS = {"http": 80, "https": 443}


def http_entries(route: CompiledRoute, *, countries: CountrySource | None) -> tuple[Entry, ...]:
    config = route.config
    out: list[Entry] = []
    for i, rule in enumerate(config.http_rules):
        track = f"rule-{i}"
        for match in rule.matches:
            path, conditions = match.path, match.conditions
            order = rank(path.kind, path.value, len(conditions.methods), len(conditions.headers),
                         len(conditions.query), config, len(out))  # fmt: skip
            regex = compile_regex(path.value).fullmatch if path.kind == "RegularExpression" else None
            out.append(
                Entry(
                    route=route,
                    kind=path.kind,
                    path=path.value,
                    predicates=matchers.compile_match(conditions, countries=countries),
                    action=_action(route, rule, track, path, countries),
                    rank=order,
                    regex=regex,
                )
            )
    return tuple(out)


def _action(
    route: CompiledRoute, rule: HttpRule, track: str, path: PathMatch, countries: CountrySource | None
) -> HttpAction:
    redirect = rule.redirect
    matched = path.value if path.kind == "PathPrefix" else ""
    if redirect is not None:
        answer = Decision(track, "", "redirect", status=redirect.status_code, redirect=redirect,
                          matched=matched)  # fmt: skip
        return HttpAction((), answer)
    rewrite = rule.rewrite.path if rule.rewrite is not None else None
    picks = tuple(
        (
            Decision(
                backend_track(track, j, b, rule.canary),
                b.upstream,
                "backend",
                matched=matched,
                rewrite=rewrite,
            )
            if b.upstream is not None
            else Decision(track, "", "invalid-backend", status=500),
            b.weight,
        )
        for j, b in enumerate(rule.backends)
    )
    fixed = None
    if not any(weight > 0 for _, weight in picks):
        fixed = Decision(track, "", "no-backend", status=500)
    if rule.sticky is None and not rule.pins:
        return HttpAction(() if fixed is not None else picks, fixed)
    return PolicyAction(picks, fixed, rule, route, countries)


def _reason(decision: Decision, reason: str) -> Decision:
    """``decision`` with another reason (an invalid backend's 500 keeps its own)."""
    if decision.status:
        return decision
    return Decision(decision.track, decision.upstream, reason, decision.status, decision.redirect,
                    decision.matched, decision.rewrite)  # fmt: skip


class PolicyAction(HttpAction):
    """A rule with a TrafficPolicy: pins, then the sticky monotone split, then the weighted pick."""

    __slots__ = ("keys", "pins", "salt_prefix", "sticky_bounds", "sticky_picks")

    def __init__(
        self, picks: tuple[tuple[Decision, int], ...], fixed: Decision | None, rule: HttpRule,
        route: CompiledRoute, countries: CountrySource | None,
    ) -> None:  # fmt: skip
        super().__init__(picks if fixed is None else (), fixed)
        every = tuple(d for d, _ in picks)
        self.pins = tuple((shared_match(p.match, countries), _reason(every[p.backend], f"pin:{p.name}"))
                          for p in rule.pins)  # fmt: skip
        self.keys = sticky.compile_keys(rule.sticky.keys) if rule.sticky is not None else ()
        bounds, owners = sticky.monotone_ranges([w for _, w in picks])
        self.sticky_bounds = bounds
        self.sticky_picks = tuple(_reason(every[i], "sticky") for i in owners)
        self.salt_prefix = sticky.salt_prefix(route.config.salt)

    def decide(self, view: RequestView, sample: float) -> Decision:
        for predicates, decision in self.pins:
            for predicate in predicates:
                if not predicate(view):
                    break
            else:
                return decision
        if self.fixed is not None:
            return self.fixed
        bucket = self.bucket(view)
        if bucket is not None:
            return self.sticky_picks[bisect.bisect_right(self.sticky_bounds, bucket)]
        return self.pick(sample)

    def bucket(self, view: RequestView) -> int | None:
        """The bucket of the first present sticky key (None: no key, or no sticky settings)."""
        for _, extract in self.keys:
            key = extract(view)
            if key:
                return sticky.bucket_with_prefix(self.salt_prefix, key)
        return None


def explain_sticky(action: HttpAction | None, view: RequestView) -> dict[str, Any] | None:
    """For ``/explain``: the sticky key, its bucket and the rule's bucket ranges."""
    if not isinstance(action, PolicyAction):
        return None
    spec, _ = sticky.first_key(action.keys, view)
    return {"key": spec, "bucket": action.bucket(view), "bounds": list(action.sticky_bounds)}


def redirect_location(decision: Decision, *, scheme: str, host: str, port: int, path: str, query: str) -> str:
    """The ``Location`` of a redirect decision for a request (``host`` without port, as routed).

    Unset parts keep the request's; the port is the redirect's, else the well-known port of a redirect
    scheme, else the listener's, and it is left out when it is the scheme's well-known port.
    """
    spec = decision.redirect
    if spec is None:
        raise ValueError("not a redirect decision")
    new_scheme = spec.scheme or scheme
    if spec.port is not None:
        new_port = spec.port
    elif spec.scheme is not None:
        new_port = WELL_KNOWN_PORTS[spec.scheme]
    else:
        new_port = port
    hostname = spec.hostname or host
    netloc = hostname if WELL_KNOWN_PORTS.get(new_scheme) == new_port else f"{hostname}:{new_port}"
    target = replace_path(spec.path, decision.matched, path)
    return f"{new_scheme}://{netloc}{target}{'?' + query if query else ''}"


def backend_track(track: str, index: int, backend: Backend, canary: int | None = None) -> str:
    """The track label of a backend: its rule's, or ``rule-<i>.<j>`` when it has filters of its own (its
    own header plans, see ``proxy/routing/state.py``); in a rule with a rollout's ``canary``, that suffixed
    ``.canary`` for the canary and ``.stable`` for the others (the analysis reads the last part)."""
    own = f"{track}.{index}" if backend.has_filters else track
    if canary is None:
        return own
    return f"{own}.canary" if index == canary else f"{own}.stable"
