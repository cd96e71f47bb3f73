"""``TrafficPolicy`` (graylane.io/v1alpha1): Graylane's canary features on HTTPRoutes (GEP-713 policy).

Parsed purely into frozen dataclasses. Parsing never raises: a policy the proxy could not serve keeps its
first problem as ``problem`` (``spec.pin[0].match.sourceCIDRs[1]: not a valid CIDR ...``), checked with the
route document loader's own readers (sticky keys, ``jwt``, CanaryRoute's ``match``), so what is accepted
here compiles. The blocks are kept as written (JSON) for the route document. See docs/gateway-api.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.jwtblock import parse_jwt
from graylane.config.matchblock import parse_match
from graylane.config.stickyblock import parse_sticky
from graylane.gateway.objects import GROUP, Meta, as_list, as_map, as_str, parse_meta
from graylane.rollout.spec import ROLLOUT_KEYS, RolloutSpec, RolloutSpecError, parse_rollout_spec

API_VERSION = "graylane.io/v1alpha1"
KIND = "TrafficPolicy"
SPEC_KEYS = ("targetRefs", "sticky", "jwt", "pin", "rollout")
PIN_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
BACKEND = re.compile(
    r"(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)(:(?P<port>\d{1,5}))?"
)
PIN_MATCH_KEYS = ("headers", "query", "cookies", "jwtClaims", "sourceCIDRs", "sourceCountries")


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    """One ``targetRefs`` entry: an HTTPRoute of the policy's namespace, optionally one rule by name."""

    name: str
    section: str | None
    raw: Mapping[str, Any]  # as written: the status echoes it for a target that is not found


@dataclass(frozen=True, slots=True)
class BackendName:
    """A backendRef named by a policy: a Service, optionally with its port."""

    name: str
    port: int | None  # None: any port of that Service among the rule's backendRefs

    @property
    def label(self) -> str:
        return self.name + (f":{self.port}" if self.port is not None else "")


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    match: Mapping[str, Any]  # CanaryRoute's ``match`` block, as written
    backend: BackendName


@dataclass(frozen=True, slots=True)
class PolicyRollout:
    """``spec.rollout``: ramp ``canary`` (one backendRef of each targeted rule) through ``spec``'s steps."""

    canary: BackendName
    spec: RolloutSpec
    raw: Mapping[str, Any]  # as written (the revision: a new canary restarts the rollout)


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    meta: Meta
    targets: tuple[PolicyTarget, ...]
    sticky: Mapping[str, Any] | None  # {"keys": [...]}
    jwt: Mapping[str, Any] | None
    pins: tuple[Pin, ...]
    problem: str | None  # the first invalid field, with its path; None: valid
    status_ancestors: tuple[Mapping[str, Any], ...] = ()  # status.ancestors as found
    rollout: PolicyRollout | None = None
    status_rollout: Mapping[str, Any] | None = None  # status.rollout as found

    @property
    def order(self) -> tuple[str, str, str]:
        """Conflicts: the oldest policy wins, then ``namespace/name``."""
        return self.meta.created, self.meta.namespace, self.meta.name


def parse_traffic_policy(obj: Mapping[str, Any]) -> TrafficPolicy:
    meta = parse_meta(obj)
    spec = as_map(obj.get("spec"))
    c = FieldChecker()
    c.obj(spec, "spec", required=("targetRefs",), optional=SPEC_KEYS)
    targets = _targets(c, spec.get("targetRefs"))
    has_jwt = spec.get("jwt") is not None
    if has_jwt:
        _prefixed(c, lambda inner: parse_jwt(inner, spec["jwt"]))
        if "secretRef" in as_map(spec["jwt"]):
            c.error(
                "spec.jwt.secretRef",
                "not on a TrafficPolicy: HS* keys are not mirrored (publicKeys, jwksURL)",
            )
    sticky = spec.get("sticky")
    if sticky is not None:
        _prefixed(c, lambda inner: parse_sticky(inner, sticky, "sticky", has_jwt=has_jwt))
    pins = _pins(c, spec.get("pin", []), has_jwt=has_jwt)
    rollout = _rollout(c, spec["rollout"], targets) if spec.get("rollout") is not None else None
    if sticky is None and not pins and rollout is None and not c.errors:
        c.error("spec", "give sticky, pin or rollout (a policy that changes nothing)")
    status = as_map(obj.get("status"))
    ancestors = tuple(as_map(a) for a in as_list(status.get("ancestors")))
    problem = str(c.errors[0]) if c.errors else None
    return TrafficPolicy(meta, targets, as_map(sticky) if sticky is not None else None,
                         as_map(spec["jwt"]) if has_jwt else None, pins, problem, ancestors, rollout,
                         as_map(status.get("rollout")) if "rollout" in status else None)  # fmt: skip


def _prefixed(c: FieldChecker, check: Any) -> None:
    """Run a document reader (its paths start at ``jwt``/``sticky``) and file its errors under ``spec.``."""
    inner = FieldChecker()
    check(inner)
    for error in inner.errors:
        c.error(join("spec", error.path), error.message)


def _targets(c: FieldChecker, value: Any) -> tuple[PolicyTarget, ...]:
    out: list[PolicyTarget] = []
    for i, item in enumerate(c.array(value, "spec.targetRefs", min_len=1, max_len=16)):
        path = join("spec.targetRefs", i)
        obj = c.obj(item, path, required=("group", "kind", "name"), optional=("sectionName",))
        if obj is None:
            continue
        if (obj.get("group"), obj.get("kind")) != (GROUP, "HTTPRoute"):
            c.error(path, f"must name an HTTPRoute (group {GROUP}, kind HTTPRoute)")
            continue
        name = c.string(obj.get("name"), join(path, "name"), max_len=253)
        section = obj.get("sectionName")
        if section is not None:
            section = c.string(section, join(path, "sectionName"), max_len=253)
        if name is not None:
            target = PolicyTarget(name, section, dict(obj))
            if any((t.name, t.section) == (name, section) for t in out):
                c.error(path, "duplicate target")
            out.append(target)
    return tuple(out)


def _pins(c: FieldChecker, value: Any, *, has_jwt: bool) -> tuple[Pin, ...]:
    out: list[Pin] = []
    for i, item in enumerate(c.array(value, "spec.pin", max_len=64)):
        path = join("spec.pin", i)
        obj = c.obj(item, path, required=("name", "match", "backendRef"))
        if obj is None:
            continue
        name = c.string(obj.get("name"), join(path, "name"), max_len=63, pattern=PIN_NAME, what="a pin name")
        if name is not None and any(p.name == name for p in out):
            c.error(join(path, "name"), f"duplicate pin name {name!r}")
        match_path = join(path, "match")
        match = as_map(obj.get("match"))
        for key in match:
            if key not in PIN_MATCH_KEYS:
                c.error(join(match_path, key), "not a pin condition (paths and methods are the HTTPRoute's)")
        parsed = parse_match(c, obj.get("match"), match_path)
        if parsed is not None and parsed.jwt_claims and not has_jwt:
            c.error(join(match_path, "jwtClaims"), "claims need spec.jwt")
        ref = _backend_name(c, obj.get("backendRef"), join(path, "backendRef"))
        if name is not None and ref is not None:
            out.append(Pin(name, dict(match), ref))
    return tuple(out)


def _backend_name(c: FieldChecker, value: Any, path: str) -> BackendName | None:
    ref = c.string(value, path, max_len=259, pattern=BACKEND, what="a Service name or name:port")
    found = BACKEND.fullmatch(ref) if ref is not None else None
    if found is None:
        return None
    return BackendName(as_str(found["name"]), int(found["port"]) if found["port"] else None)


def _rollout(c: FieldChecker, value: Any, targets: tuple[PolicyTarget, ...]) -> PolicyRollout | None:
    """``spec.rollout``: CanaryRoute's rollout (no shadow steps) plus ``canary``, the backendRef it ramps.

    One HTTPRoute per rolling policy: its analysis is that route's traffic (several of its rules may share
    the canary)."""
    path = "spec.rollout"
    obj = c.obj(value, path, required=("canary",), optional=ROLLOUT_KEYS)
    if obj is None:
        return None
    canary = _backend_name(c, obj.get("canary"), join(path, "canary"))
    if len({t.name for t in targets}) > 1:
        c.error("spec.targetRefs", "a policy with a rollout targets one HTTPRoute (its rules may differ)")
    try:
        spec = parse_rollout_spec({k: v for k, v in obj.items() if k != "canary"}, path)
    except RolloutSpecError as exc:
        for error in exc.errors:
            c.error(error.path, error.message)
        return None
    for i, step in enumerate(spec.steps):
        if step.mirror is not None:
            c.error(join(join(path, "steps"), i), "shadow steps (mirror) are CanaryRoute's: give a weight")
    return PolicyRollout(canary, spec, dict(obj)) if canary is not None else None
