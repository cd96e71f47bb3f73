"""A Gateway API document's ``httpRules`` as table entries, and the ``Location`` of a RequestRedirect.

Each (rule, match) is one :class:`Entry`; its action picks a backend by weight (``weight / total``), answers
500 for the share of an invalid backend (``upstream: null``) or when nothing can be picked, or redirects.
Decisions are precomputed: the pick allocates nothing. Track labels are ``rule-<i>`` (metrics, header plans).
"""

from __future__ import annotations

from graylane.config.matchblock import compile_regex
from graylane.config.model import Backend, HttpRule, PathMatch
from graylane.routing import matchers
from graylane.routing.entries import CompiledRoute, Decision, Entry, HttpAction, rank
from graylane.routing.filters import replace_path
from graylane.routing.request import CountrySource

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
                    action=_action(rule, track, path),
                    rank=order,
                    regex=regex,
                )
            )
    return tuple(out)


def _action(rule: HttpRule, track: str, path: PathMatch) -> HttpAction:
    redirect = rule.redirect
    matched = path.value if path.kind == "PathPrefix" else ""
    if redirect is not None:
        answer = Decision(track, "", "redirect", status=redirect.status_code, redirect=redirect,
                          matched=matched)  # fmt: skip
        return HttpAction((), answer)
    rewrite = rule.rewrite.path if rule.rewrite is not None else None
    picks = tuple(
        (
            Decision(backend_track(track, j, b), b.upstream, "backend", matched=matched, rewrite=rewrite)
            if b.upstream is not None
            else Decision(track, "", "invalid-backend", status=500),
            b.weight,
        )
        for j, b in enumerate(rule.backends)
    )
    if not any(weight > 0 for _, weight in picks):
        return HttpAction((), Decision(track, "", "no-backend", status=500))
    return HttpAction(picks, None)


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


def backend_track(track: str, index: int, backend: Backend) -> str:
    """The track label of a backend: its rule's, or ``rule-<i>.<j>`` when it has filters of its own (its
    own header plans, see ``proxy/routing/state.py``)."""
    if backend.request_headers is None and backend.response_headers is None:
        return track
    return f"{track}.{index}"
