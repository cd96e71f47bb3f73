"""Full validation of a route document into a :class:`RouteConfig` (see :mod:`graylane.config.document`)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, cast

from graylane.config.fields import FieldChecker, join
from graylane.config.httpblock import parse_http_top, parse_listeners
from graylane.config.jwtblock import parse_jwt
from graylane.config.matchblock import HEADER_NAME, parse_match
from graylane.config.memo import BLOCKS
from graylane.config.mirrorblock import parse_mirror
from graylane.config.model import (
    MAX_DOCUMENT_BYTES,
    SCHEMA_VERSIONS,
    ConfigError,
    FieldError,
    RouteConfig,
    RouteRef,
    Rule,
    Track,
    UpstreamSpec,
    VersionRouting,
    document_checksum,
)
from graylane.config.routeblock import parse_hosts, parse_path, parse_route_ref
from graylane.config.stickyblock import parse_sticky
from graylane.config.tlsblock import parse_tls
from graylane.config.upstreamblock import METADATA_KEY, parse_request_headers, parse_upstreams
from graylane.strictjson import StrictJsonError, loads_strict

T = TypeVar("T")
NO_DOCUMENT: Mapping[str, Any] = MappingProxyType({})
TOP_REQUIRED: tuple[str, ...] = ("schemaVersion", "route", "hosts", "pathPrefix", "stable", "canary")
TOP_REQUIRED += ("upstreams", "weight", "salt", "checksum")
TOP_OPTIONAL = ("rules", "versionRouting", "sticky", "jwt", "requestHeaders", "mirror", "tls")
SCHEMA2_OPTIONAL = ("listeners", "preserveHost")
HTTP_REQUIRED = ("schemaVersion", "route", "hosts", "upstreams", "httpRules", "salt", "checksum")
HTTP_OPTIONAL = (*SCHEMA2_OPTIONAL, "jwt")
RULE_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}")


def parse_document(raw: str | bytes | Mapping[str, Any], *, keep_document: bool = True) -> RouteConfig:
    """Validate ``raw`` completely; raise :class:`ConfigError` with every problem found."""
    if isinstance(raw, Mapping):
        try:  # detach from the caller's objects and prove the mapping is plain JSON
            doc: Any = json.loads(json.dumps(raw, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise ConfigError([FieldError("", f"not a JSON document ({type(exc).__name__})")]) from None
        text = ""
    else:
        try:
            doc = loads_strict(raw, max_bytes=MAX_DOCUMENT_BYTES)
        except StrictJsonError as exc:
            raise ConfigError([FieldError("", str(exc))]) from None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw  # loads_strict proved it decodes
    c = FieldChecker()
    version = doc.get("schemaVersion") if isinstance(doc, Mapping) else None
    if isinstance(doc, Mapping) and (isinstance(version, bool) or version not in SCHEMA_VERSIONS):
        problem = "required field is missing" if "schemaVersion" not in doc else "unsupported schema version"
        readable = " and ".join(map(str, SCHEMA_VERSIONS))
        raise ConfigError([FieldError("schemaVersion", f"{problem} (this proxy reads {readable})")])
    required, optional = _top_keys(doc)
    top = c.obj(doc, "", required=required, optional=optional)
    if top is None:
        raise ConfigError(c.errors)
    _check_checksum(c, top, text)
    config = parse_http_top(c, top) if "httpRules" in top else _parse_top(c, top)
    if c.errors or config is None:
        raise ConfigError(c.errors)
    if not keep_document:
        object.__setattr__(config, "document", NO_DOCUMENT)
    return config


def _top_keys(doc: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Required and optional top-level keys: schema 1, schema 2 as a CanaryRoute, or schema 2 with
    ``httpRules`` (a Gateway API route: none of the CanaryRoute keys)."""
    if not isinstance(doc, Mapping) or doc.get("schemaVersion") == 1:
        return TOP_REQUIRED, TOP_OPTIONAL
    if "httpRules" in doc:
        return HTTP_REQUIRED, HTTP_OPTIONAL
    return TOP_REQUIRED, TOP_OPTIONAL + SCHEMA2_OPTIONAL


def _check_checksum(c: FieldChecker, top: Mapping[str, Any], text: str) -> None:
    given = c.string(top.get("checksum"), "checksum", pattern=CHECKSUM, what="sha256:<64 hex>")
    if given is None or _hashed_as_written(text, given):
        return
    try:
        expected = document_checksum(top)
    except (TypeError, ValueError, UnicodeEncodeError):
        c.error("", "document holds values that are not JSON")
        return
    if given != expected:
        c.error("checksum", "does not match the document's content (partial or tampered write?)")


def _hashed_as_written(text: str, given: str) -> bool:
    """Whether ``text`` without its ``checksum`` member hashes to ``given``: true of the canonical text the
    operator and ``graylane render`` write, so their documents are not serialised again to check it. Any
    other text is checked the long way, on its canonical form."""
    member = f'"checksum":"{given}"'
    if f"{{{member}," in text[: len(member) + 2]:  # the first key (a Gateway API document)
        body = "{" + text[len(member) + 2 :]
    elif f",{member}" in text:
        body = text.replace(f",{member}", "", 1)
    else:
        return False
    return hashlib.sha256(body.rstrip("\n").encode("utf-8")).hexdigest() == given[7:]


def _parse_top(c: FieldChecker, top: Mapping[str, Any]) -> RouteConfig | None:
    upstreams = parse_upstreams(c, top.get("upstreams"))
    names = set(upstreams)
    stable = _upstream_ref(c, top.get("stable"), "stable", names)
    canary = _upstream_ref(c, top.get("canary"), "canary", names)
    jwt = _block(c, "jwt", top.get("jwt"), lambda v: parse_jwt(c, v))
    has_jwt = jwt is not None
    rules = _rules(c, top.get("rules", []), has_jwt=has_jwt)
    vr = top.get("versionRouting")
    version_routing = _version_routing(c, vr, upstreams) if vr is not None else None
    sticky = _block(
        c, f"sticky:{has_jwt}", top.get("sticky"), lambda v: parse_sticky(c, v, "sticky", has_jwt=has_jwt)
    )
    weight = c.number(top.get("weight"), "weight", lo=0, hi=100)
    if weight is not None and abs(weight * 100 - round(weight * 100)) > 1e-6:
        c.error("weight", "must have at most two decimals")
    route = parse_route_ref(c, top.get("route"), schema2=top["schemaVersion"] >= 2)
    if route is not None and route.kind != "CanaryRoute":
        c.error("route.kind", f"a {route.kind} document has httpRules instead of stable/canary")
    hosts = parse_hosts(c, top.get("hosts"))
    path_prefix = parse_path(c, top.get("pathPrefix"), "pathPrefix")
    salt = c.string(top.get("salt"), "salt", max_len=256)
    raw_headers = top.get("requestHeaders", {})
    request_headers = BLOCKS.parse(
        c, "requestHeaders", raw_headers, lambda: MappingProxyType(parse_request_headers(c, raw_headers))
    )
    raw_mirror = top.get("mirror")
    mirror = parse_mirror(c, raw_mirror, stable=stable, canary=canary) if raw_mirror is not None else None
    listeners = parse_listeners(c, top, hosts)
    tls = parse_tls(c, top["tls"], hosts) if top.get("tls") is not None else None
    if c.errors or request_headers is None:
        return None
    return RouteConfig(
        schema_version=top["schemaVersion"],
        route=cast(RouteRef, route),
        hosts=hosts,
        path_prefix=cast(str, path_prefix),
        stable=cast(str, stable),
        canary=cast(str, canary),
        upstreams=MappingProxyType(upstreams),
        rules=rules,
        version_routing=version_routing,
        weight=cast(float, weight),
        salt=cast(str, salt),
        sticky=sticky,
        jwt=jwt,
        request_headers=request_headers,
        checksum=top["checksum"],
        document=MappingProxyType(dict(top)),
        mirror=mirror,
        listeners=listeners,
        preserve_host=top.get("preserveHost", False) is True,
        tls=tls,
    )


def _upstream_ref(c: FieldChecker, value: Any, path: str, names: set[str]) -> str | None:
    name = c.string(value, path, max_len=253)
    if name is not None and name not in names:
        c.error(path, f"names no upstream ({name!r} is not a key of upstreams)")
        return None
    return sys.intern(name) if name is not None else None  # one string with the upstream's own name


def _block(c: FieldChecker, kind: str, value: Any, parse: Callable[[Any], T | None]) -> T | None:
    """An optional block (absent or null: ``None``), validated once per distinct content (:mod:`.memo`)."""
    if value is None:
        return None
    return BLOCKS.parse(c, kind, value, lambda: parse(value))


def _rules(c: FieldChecker, value: Any, *, has_jwt: bool) -> tuple[Rule, ...]:
    out: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(c.array(value, "rules", max_len=1000)):
        path = join("rules", i)
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in seen:  # reported in place, so never from the memo
            rule = _rule(c, item, path, has_jwt=has_jwt, seen=seen)
        else:
            parse = functools.partial(_rule, c, item, path, has_jwt=has_jwt, seen=seen)
            rule = BLOCKS.parse(c, f"rule:{has_jwt}", item, parse)
        if rule is not None:
            seen.add(rule.name)
            out.append(rule)
    return tuple(out)


def _rule(c: FieldChecker, item: Any, path: str, *, has_jwt: bool, seen: set[str]) -> Rule | None:
    obj = c.obj(item, path, required=("name", "to", "match"))
    if obj is None:
        return None
    name = c.string(obj.get("name"), join(path, "name"), max_len=63, pattern=RULE_NAME, what="a rule name")
    if name is not None and name in seen:
        c.error(join(path, "name"), f"duplicate rule name {name!r}")
        name = None
    to = obj.get("to")
    if to not in ("stable", "canary"):
        c.error(join(path, "to"), "must be 'stable' or 'canary'")
    match = parse_match(c, obj.get("match"), join(path, "match"))
    if match is not None and match.jwt_claims and not has_jwt:
        c.error(join(path, "match.jwtClaims"), "claims need the route's jwt settings (jwt is null)")
    if name is None or match is None or to not in ("stable", "canary"):
        return None
    return Rule(name=sys.intern(name), to=cast(Track, to), match=match)


def _version_routing(
    c: FieldChecker, value: Any, upstreams: Mapping[str, UpstreamSpec]
) -> VersionRouting | None:
    obj = c.obj(value, "versionRouting", required=("header", "metadataKey", "candidates"))
    if obj is None:
        return None
    header = c.string(obj.get("header"), "versionRouting.header", pattern=HEADER_NAME, what="a header name")
    key = c.string(
        obj.get("metadataKey"), "versionRouting.metadataKey", pattern=METADATA_KEY, what="a metadata key"
    )
    candidates = c.strings(obj.get("candidates"), "versionRouting.candidates", max_len=100)
    owners: dict[str, str] = {}
    for i, name in enumerate(candidates):
        path = join("versionRouting.candidates", i)
        if name not in upstreams:
            c.error(path, f"names no upstream ({name!r} is not a key of upstreams)")
        elif key is not None and key in upstreams[name].metadata:
            tag = upstreams[name].metadata[key]
            if tag in owners:
                c.error(path, f"{key}={tag!r} is also the value of candidate {owners[tag]!r}")
            owners[tag] = name
    if header is None or key is None:
        return None
    return VersionRouting(header=header, metadata_key=key, candidates=candidates)
