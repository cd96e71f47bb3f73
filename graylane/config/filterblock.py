"""Schema 2: the ``filters`` of an HTTP rule and of a backend, and a rule's ``timeouts`` (:mod:`.httpblock`).

```jsonc
"filters": {"requestHeaders":  {"set": {"X-A": "1"}, "add": {"X-B": "2"}, "remove": ["X-C"]},
            "responseHeaders": {"set": {...}, "add": {...}, "remove": [...]},
            "redirect": {"scheme": "https", "hostname": "h", "port": 443,
                         "path": {"type": "ReplacePrefixMatch", "value": "/new"}, "statusCode": 301},
            "rewrite":  {"hostname": "h", "path": {"type": "ReplaceFullPath", "value": "/x"}},
            "mirrors":  [{"upstream": "<key of upstreams>", "percent": 20}]},
"timeouts": {"request": 0.5, "backendRequest": 0.25}      // seconds; 0 = none
```

A backend's ``filters`` take ``requestHeaders`` and ``responseHeaders`` only. ``redirect`` and ``rewrite``
exclude each other (the API forbids both in one rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.matchblock import HEADER_NAME
from graylane.config.model import HeaderFilter, MirrorTo, PathMatch, Redirect, Rewrite, RuleTimeouts
from graylane.config.routeblock import parse_path, valid_host
from graylane.config.upstreamblock import check_header_map, check_header_name

REPLACE_PATHS = {"ReplaceFullPath": "Exact", "ReplacePrefixMatch": "PathPrefix"}
REDIRECT_CODES = (301, 302, 303, 307, 308)
RULE_FILTERS = ("requestHeaders", "responseHeaders", "redirect", "rewrite", "mirrors")
BACKEND_FILTERS = ("requestHeaders", "responseHeaders")
MAX_TIMEOUT = 86400.0


@dataclass(frozen=True, slots=True)
class Filters:
    request_headers: HeaderFilter | None = None
    response_headers: HeaderFilter | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirrors: tuple[MirrorTo, ...] = ()


def parse_filters(
    c: FieldChecker, value: Any, path: str, *, upstreams: set[str], keys: tuple[str, ...] = RULE_FILTERS
) -> Filters:
    obj = c.obj(value, path, optional=keys)
    if obj is None:
        return Filters()
    headers = {
        key: _header_filter(c, obj[key], join(path, key)) if key in obj else None
        for key in ("requestHeaders", "responseHeaders")
    }
    redirect = _redirect(c, obj["redirect"], join(path, "redirect")) if "redirect" in obj else None
    rewrite = _rewrite(c, obj["rewrite"], join(path, "rewrite")) if "rewrite" in obj else None
    if "redirect" in obj and "rewrite" in obj:
        c.error(join(path, "rewrite"), "a rule cannot both redirect and rewrite")
    mirrors = _mirrors(c, obj.get("mirrors", []), join(path, "mirrors"), upstreams)
    return Filters(headers["requestHeaders"], headers["responseHeaders"], redirect, rewrite, mirrors)


def parse_timeouts(c: FieldChecker, value: Any, path: str) -> RuleTimeouts | None:
    obj = c.obj(value, path, optional=("request", "backendRequest"))
    if obj is None:
        return None
    request = c.number(obj.get("request", 0), join(path, "request"), lo=0, hi=MAX_TIMEOUT)
    backend = c.number(obj.get("backendRequest", 0), join(path, "backendRequest"), lo=0, hi=MAX_TIMEOUT)
    if request is None or backend is None:
        return None
    if request and backend > request:
        c.error(join(path, "backendRequest"), "must not be longer than request")
    return RuleTimeouts(request=request, backend_request=backend)


def _header_filter(c: FieldChecker, value: Any, path: str) -> HeaderFilter | None:
    obj = c.obj(value, path, optional=("set", "add", "remove"))
    if obj is None:
        return None
    maps: dict[str, dict[str, str]] = {}
    for key in ("set", "add"):
        maps[key] = c.string_map(
            obj.get(key, {}), join(path, key), key_pattern=HEADER_NAME, what="a header name"
        )
        check_header_map(c, maps[key], join(path, key))
    remove = c.strings(obj.get("remove", []), join(path, "remove"), max_len=16, pattern=HEADER_NAME,
                       what="a header name")  # fmt: skip
    seen = {name.lower() for name in maps["set"]}
    for i, name in enumerate(remove):
        check_header_name(c, name, join(join(path, "remove"), i), seen)
    return HeaderFilter(set=MappingProxyType(maps["set"]), add=MappingProxyType(maps["add"]), remove=remove)


def _hostname(c: FieldChecker, obj: Mapping[str, Any], path: str) -> str | None:
    hostname = obj.get("hostname")
    if hostname is None:
        return None
    hostname = c.string(hostname, join(path, "hostname"), max_len=253)
    if hostname is not None and (hostname.startswith("*") or not valid_host(hostname)):
        c.error(join(path, "hostname"), "must be a lower-case DNS name or IP address without a port")
        return None
    return hostname


def _redirect(c: FieldChecker, value: Any, path: str) -> Redirect | None:
    obj = c.obj(value, path, optional=("scheme", "hostname", "port", "path", "statusCode"))
    if obj is None:
        return None
    before = len(c.errors)
    scheme = obj.get("scheme")
    if scheme is not None and scheme not in ("http", "https"):
        c.error(join(path, "scheme"), "must be http or https")
    hostname = _hostname(c, obj, path)
    port = c.integer(obj["port"], join(path, "port"), lo=1, hi=65535) if "port" in obj else None
    target = _replace_path(c, obj["path"], join(path, "path")) if "path" in obj else None
    code = obj.get("statusCode", 302)
    if isinstance(code, bool) or code not in REDIRECT_CODES:
        c.error(join(path, "statusCode"), f"must be one of {', '.join(map(str, REDIRECT_CODES))}")
    if len(c.errors) != before:
        return None
    return Redirect(scheme=scheme, hostname=hostname, port=port, path=target, status_code=code)


def _rewrite(c: FieldChecker, value: Any, path: str) -> Rewrite | None:
    obj = c.obj(value, path, optional=("hostname", "path"))
    if obj is None:
        return None
    before = len(c.errors)
    hostname = _hostname(c, obj, path)
    target = _replace_path(c, obj["path"], join(path, "path")) if "path" in obj else None
    if len(c.errors) != before:
        return None
    return Rewrite(hostname=hostname, path=target)


def _replace_path(c: FieldChecker, value: Any, path: str) -> PathMatch | None:
    """``ReplaceFullPath`` is kept as kind Exact, ``ReplacePrefixMatch`` as kind PathPrefix."""
    obj = c.obj(value, path, required=("type", "value"))
    if obj is None:
        return None
    kind = REPLACE_PATHS.get(str(obj.get("type")))
    if kind is None:
        c.error(join(path, "type"), "must be ReplaceFullPath or ReplacePrefixMatch")
        return None
    text = parse_path(c, obj.get("value"), join(path, "value"))
    if text is None:
        return None
    if kind == "PathPrefix":
        text = text.rstrip("/") or "/"
    return PathMatch(kind="Exact" if kind == "Exact" else "PathPrefix", value=text)


def _mirrors(c: FieldChecker, value: Any, path: str, upstreams: set[str]) -> tuple[MirrorTo, ...]:
    out = []
    for i, item in enumerate(c.array(value, path, max_len=16)):
        item_path = join(path, i)
        obj = c.obj(item, item_path, required=("upstream",), optional=("percent",))
        if obj is None:
            continue
        upstream = obj.get("upstream")
        percent = c.number(obj.get("percent", 100), join(item_path, "percent"), lo=0, hi=100)
        if upstream not in upstreams:
            c.error(join(item_path, "upstream"), "must name a key of upstreams")
        elif percent is not None:
            out.append(MirrorTo(upstream=upstream, percent=percent))
    return tuple(out)
