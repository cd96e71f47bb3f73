"""Whether an HTTPRoute attaches to a Gateway through one parentRef, and on which listeners with which hosts.

Order of the checks, each with the spec's reason when it fails: the parentRef selects listeners (by
``sectionName``, ``port``, or all) -- ``NoMatchingParent``; the selected listeners allow the route's kind and
namespace (``allowedRoutes``) -- ``NotAllowedByListeners``; the route's hostnames intersect theirs --
``NoMatchingListenerHostname``. Attachment counts towards a listener's ``attachedRoutes`` whatever that
listener's own conditions (the spec says so), but only accepted listeners serve the route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graylane.compile.selectors import selector_matches
from graylane.gateway import conditions as c
from graylane.gateway import hostnames
from graylane.gateway.listeners import HTTP_ROUTE, ListenerVerdict
from graylane.gateway.objects import Gateway, HTTPRoute, ParentRef


@dataclass(frozen=True, slots=True)
class Attachment:
    parent: ParentRef
    accepted: c.Condition
    listeners: tuple[tuple[ListenerVerdict, tuple[str, ...]], ...] = ()  # attached listeners and their hosts

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.listener.name for v, _ in self.listeners)


def attach(
    route: HTTPRoute,
    parent: ParentRef,
    gateway: Gateway,
    verdicts: tuple[ListenerVerdict, ...],
    *,
    namespaces: Mapping[str, Mapping[str, str]],
) -> Attachment:
    """``namespaces``: the labels of every namespace (for ``from: Selector``)."""
    selected = [
        v
        for v in verdicts
        if (parent.section_name is None or v.listener.name == parent.section_name)
        and (parent.port is None or v.listener.port == parent.port)
    ]
    if not selected:
        what = _what(parent)
        message = f"Gateway {gateway.meta.namespace}/{gateway.meta.name} has no listener {what}"
        return Attachment(parent, c.Condition(c.ACCEPTED, False, c.NO_MATCHING_PARENT, message))
    labels = namespaces.get(route.meta.namespace, {})
    allowed = [v for v in selected if HTTP_ROUTE in v.kinds and _namespace_allowed(v, gateway, route, labels)]
    if not allowed:
        message = f"the selected listeners do not allow HTTPRoutes from namespace {route.meta.namespace}"
        return Attachment(parent, c.Condition(c.ACCEPTED, False, c.NOT_ALLOWED_BY_LISTENERS, message))
    served = []
    for verdict in allowed:
        names = hostnames.intersect(verdict.listener.hostname, route.hostnames)
        if names is not None:
            served.append((verdict, names))
    if not served:
        message = "spec.hostnames: none intersects a hostname of the selected listeners"
        return Attachment(parent, c.Condition(c.ACCEPTED, False, c.NO_MATCHING_LISTENER_HOSTNAME, message))
    return Attachment(parent, c.ok(c.ACCEPTED), tuple(served))


def _what(parent: ParentRef) -> str:
    parts = []
    if parent.section_name is not None:
        parts.append(f"named {parent.section_name!r}")
    if parent.port is not None:
        parts.append(f"on port {parent.port}")
    return " ".join(parts) or "at all"


def _namespace_allowed(
    verdict: ListenerVerdict, gateway: Gateway, route: HTTPRoute, labels: Mapping[str, str]
) -> bool:
    lst = verdict.listener
    if lst.namespaces_from == "All":
        return True
    if lst.namespaces_from == "Same":
        return route.meta.namespace == gateway.meta.namespace
    if lst.namespaces_from == "Selector":
        return selects(lst.namespace_selector or {}, labels)
    return False  # "None" and anything unknown


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector; an empty one selects everything (unlike an absent one)."""
    return not selector or selector_matches(selector, labels)
