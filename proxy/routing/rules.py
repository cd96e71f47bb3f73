"""The targets of a Gateway API document's rules: header plans, response edits, timeouts and mirrors.

Per rule ``i`` (track ``rule-<i>``): one :class:`Target` per upstream its backends name, with the rule's
``requestHeaders`` and URLRewrite hostname (``TrackHeaders``), its ``responseHeaders`` (``ResponseEdit``)
and its timeout; a backend with filters of its own has its own track ``rule-<i>.<j>`` whose plans apply
the rule's filters, then the backend's. Each RequestMirror of the rule is a target ``(upstream,
mirror-<i>-<k>``) with the rule's request plan and a :class:`MirrorPlan` (percent, nothing compared but the
status code) that ``proxy/mirror/shadow.py`` sends like a CanaryRoute's shadow.

Timeouts: the upstream's is ``min`` of the rule's non-zero ``request`` and ``backendRequest`` (Graylane
makes one attempt per request; a reused connection found closed is retried within the same time);
``0s`` means none (a day); without ``timeouts`` the upstream's own ``timeoutSeconds`` applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from graylane.proxy.upstream.edits import ResponseEdit
from graylane.proxy.upstream.forward import Target
from graylane.proxy.upstream.headers import TrackHeaders

from graylane.config.mirrorblock import DEFAULT_MIRROR_BODY
from graylane.config.model import HeaderFilter, HttpRule, MirrorCompare, MirrorSettings, RouteConfig
from graylane.routing.httprules import backend_track
from graylane.routing.mirror import MirrorPlan

NO_TIMEOUT = 86400.0
MakeTarget = Callable[[str, TrackHeaders, "ResponseEdit | None", "float | None"], Target]


@dataclass(frozen=True, slots=True)
class RuleMirror:
    """One RequestMirror of a rule: its share and where its copy goes (a key of the plan's targets)."""

    plan: MirrorPlan
    target: tuple[str, str]
    wait: float  # how long the copy's answer waits for the primary's (the rule's timeout)


def http_targets(
    config: RouteConfig, make: MakeTarget, *, underscores: bool
) -> tuple[dict[tuple[str, str], Target], dict[str, tuple[RuleMirror, ...]]]:
    """The targets of every rule, and the mirrors of each track (``rule-<i>``, ``rule-<i>.<j>``)."""
    targets: dict[tuple[str, str], Target] = {}
    mirrors: dict[str, tuple[RuleMirror, ...]] = {}
    for i, rule in enumerate(config.http_rules):
        track, timeout = f"rule-{i}", rule_timeout(rule)
        plan = _headers(config, rule, (rule.request_headers,), underscores)
        edit = _edit((rule.response_headers,))
        tracks = {track}
        for j, backend in enumerate(rule.backends):
            if backend.upstream is None:
                continue
            own = backend_track(track, j, backend, rule.canary)
            tracks.add(own)
            if not backend.has_filters:
                targets[(backend.upstream, own)] = make(backend.upstream, plan, edit, timeout)
                continue
            both = (rule.request_headers, backend.request_headers)
            both_edit = _edit((rule.response_headers, backend.response_headers))
            targets[(backend.upstream, own)] = make(
                backend.upstream, _headers(config, rule, both, underscores), both_edit, timeout
            )
        copies = []
        for k, mirror in enumerate(rule.mirrors):
            key = (mirror.upstream, f"mirror-{i}-{k}")
            target = targets[key] = make(mirror.upstream, plan, None, timeout)
            copies.append(RuleMirror(_mirror_plan(mirror.percent, config.salt), key, target.timeout))
        if copies:
            mirrors.update(dict.fromkeys(tracks, tuple(copies)))
    return targets, mirrors


def rule_timeout(rule: HttpRule) -> float | None:
    """The upstream timeout of a rule's requests; None: the upstream's own."""
    timeouts = rule.timeouts
    if timeouts is None:
        return None
    given = [t for t in (timeouts.request, timeouts.backend_request) if t > 0]
    return min(given) if given else NO_TIMEOUT


def _headers(
    config: RouteConfig, rule: HttpRule, filters: tuple[HeaderFilter | None, ...], underscores: bool
) -> TrackHeaders:
    set_headers, add, remove = _merged(filters)
    host = rule.rewrite.hostname if rule.rewrite is not None else None
    return TrackHeaders.compile(None, set_headers, add=add, remove=remove, underscores=underscores,
                                preserve_host=config.preserve_host, host=host or "")  # fmt: skip


def _edit(filters: tuple[HeaderFilter | None, ...]) -> ResponseEdit | None:
    return ResponseEdit.compile(*((f.set, f.add, f.remove) for f in filters if f is not None))


def _merged(filters: tuple[HeaderFilter | None, ...]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Header filters applied in order as one: a later ``set`` or ``remove`` wins over an earlier name."""
    set_headers: dict[str, str] = {}
    add: dict[str, str] = {}
    remove: list[str] = []
    for f in filters:
        if f is None:
            continue
        for name in (*f.set, *f.remove):
            for earlier in (set_headers, add):
                for other in [n for n in earlier if n.lower() == name.lower()]:
                    del earlier[other]
        set_headers.update(f.set)
        add.update(f.add)
        remove += [n for n in f.remove if n.lower() not in {r.lower() for r in remove}]
    return set_headers, add, remove


def _mirror_plan(percent: float, salt: str) -> MirrorPlan:
    settings = MirrorSettings(percent=percent, methods=(), max_body_bytes=DEFAULT_MIRROR_BODY,
                              compare=MirrorCompare())  # fmt: skip
    return MirrorPlan.compile(settings, salt)
