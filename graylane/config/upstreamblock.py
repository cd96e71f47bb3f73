"""Validation of a route document's ``upstreams`` and ``requestHeaders`` (:mod:`.loader`)."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from graylane.config.fields import FieldChecker, join
from graylane.config.matchblock import HEADER_NAME
from graylane.config.memo import BLOCKS
from graylane.config.model import HeaderMutation, Track, UpstreamSpec
from graylane.lru import Lru

K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_METADATA: Lru[tuple[tuple[str, str], ...], Mapping[str, str]] = Lru(4096)
PLAIN_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-z0-9][a-z0-9.-]*)(?::(?P<port>[1-9][0-9]{0,4}))?(?P<path>/[A-Za-z0-9._~/-]*)?"
)
METADATA_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_./]{0,251}[A-Za-z0-9])?")
HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]{0,4096}")
RESERVED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
        "trailer", "upgrade", "proxy-authorization", "proxy-authenticate", "x-graylane-track",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
    }
)  # fmt: skip


def parse_upstreams(c: FieldChecker, value: Any, *, least: int = 1) -> dict[str, UpstreamSpec]:
    out: dict[str, UpstreamSpec] = {}
    obj = c.obj(value, "upstreams", optional=tuple(value) if isinstance(value, Mapping) else ())
    if obj is None:
        return out
    if not least <= len(obj) <= 100:
        c.error("upstreams", f"must have between {least} and 100 entries")
    for name, spec in obj.items():
        path = join("upstreams", str(name))
        if not isinstance(name, str) or not K8S_NAME.fullmatch(name):
            c.error(path, "upstream name must be a DNS subdomain")
            continue
        name = sys.intern(name)
        parsed = BLOCKS.parse(c, f"upstream:{name}", spec, functools.partial(_upstream, c, name, spec, path))
        if parsed is not None:
            out[name] = parsed
    return out


def _upstream(c: FieldChecker, name: str, value: Any, path: str) -> UpstreamSpec | None:
    obj = c.obj(value, path, required=("url",), optional=("metadata", "timeoutSeconds", "maxConnections"))
    if obj is None:
        return None
    before = len(c.errors)
    url = c.string(obj.get("url"), join(path, "url"), max_len=2048)
    parts = split_url(c, url, join(path, "url")) if url is not None else None
    metadata = c.string_map(
        obj.get("metadata", {}), join(path, "metadata"), key_pattern=METADATA_KEY, what="a label-style key"
    )
    timeout = c.number(obj.get("timeoutSeconds", 30), join(path, "timeoutSeconds"), lo=0.001, hi=3600)
    max_conn = c.integer(obj.get("maxConnections", 256), join(path, "maxConnections"), lo=1, hi=100_000)
    if len(c.errors) != before or parts is None or url is None or timeout is None or max_conn is None:
        return None
    scheme, host, port, base_path = parts
    return UpstreamSpec(
        name=name, url=url, scheme=scheme, host=host, port=port, base_path=base_path,
        metadata=shared_metadata(metadata), timeout_seconds=timeout, max_connections=max_conn,
    )  # fmt: skip


def shared_metadata(metadata: dict[str, str]) -> Mapping[str, str]:
    """One read-only mapping per distinct metadata (``{version: v2, region: eu}`` repeats everywhere)."""
    key = tuple(sorted(metadata.items()))
    found = _METADATA.get(key)
    if found is None:
        found = MappingProxyType({sys.intern(k): sys.intern(v) for k, v in metadata.items()})
        _METADATA.put(key, found)
    return found


def split_url(c: FieldChecker, url: str, path: str) -> tuple[Any, str, int, str] | None:
    plain = PLAIN_URL.fullmatch(url)  # the usual http://name.ns.svc:8080 without urlsplit's work
    if plain is not None and int(plain["port"] or 0) <= 65535 and "//" not in (plain["path"] or ""):
        scheme, port, base = plain["scheme"], plain["port"], plain["path"] or ""
        if ".." not in base.split("/"):
            default = 443 if scheme == "https" else 80
            return scheme, plain["host"], int(port) if port else default, base.rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        c.error(path, f"not a valid URL: {exc}")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        c.error(path, "must be an http:// or https:// URL with a host")
    elif parts.username is not None or parts.password is not None or "@" in parts.netloc:
        c.error(path, "must not carry credentials")
    elif parts.query or parts.fragment or "?" in url or "#" in url:
        c.error(path, "must not have a query or fragment")
    elif any(ch in url for ch in " \t\r\n\\") or "//" in parts.path or ".." in parts.path.split("/"):
        c.error(path, "has a malformed host or path")
    else:
        default = 443 if parts.scheme == "https" else 80
        return parts.scheme, parts.hostname, port or default, parts.path.rstrip("/")
    return None


def parse_request_headers(c: FieldChecker, value: Any) -> dict[Track, HeaderMutation]:
    out: dict[Track, HeaderMutation] = {}
    obj = c.obj(value, "requestHeaders", optional=("canary", "stable"))
    if obj is None:
        return out
    tracks: tuple[Track, ...] = ("canary", "stable")
    for track in tracks:
        if track not in obj:
            continue
        path = join("requestHeaders", track)
        section = c.obj(obj[track], path, optional=("set",))
        if section is None:
            continue
        values = c.string_map(
            section.get("set", {}), join(path, "set"), key_pattern=HEADER_NAME, what="a header name"
        )
        check_header_map(c, values, join(path, "set"))
        out[track] = HeaderMutation(set=MappingProxyType(values))
    return out


def check_header_map(c: FieldChecker, values: Mapping[str, str], path: str) -> None:
    """Header names the proxy may write: not its own, unique case-insensitively; values without CR/LF/NUL."""
    lowered: set[str] = set()
    for name, text in values.items():
        check_header_name(c, name, join(path, name), lowered)
        if not HEADER_VALUE.fullmatch(text):
            c.error(join(path, name), "value must not contain control characters (CR, LF, NUL)")


def check_header_name(c: FieldChecker, name: str, path: str, seen: set[str]) -> None:
    low = name.lower()
    if low in RESERVED_HEADERS:
        c.error(path, "this header is managed by the proxy and cannot be set")
    if low in seen:
        c.error(path, "duplicate header name (names are case-insensitive)")
    seen.add(low)
