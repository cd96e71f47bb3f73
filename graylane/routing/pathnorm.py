"""One normalisation of a request path, applied before route lookup and rule matching (RFC 3986 §6).

:func:`normalize_path` takes the path of the request target as sent (percent-encoded, no query) and
returns the form the proxy routes on *and* forwards:

1. percent-encoded unreserved characters (``A-Z a-z 0-9 - . _ ~``) are decoded (``/%61dmin`` -> ``/admin``),
   other escapes keep their encoding with upper-case hex digits (RFC 3986 §6.2.2.1-2);
2. dot segments are removed (RFC 3986 §5.2.4: ``/x/../admin`` -> ``/admin``, ``/./a`` -> ``/a``; ``..``
   never climbs above the root), so an upstream that resolves them itself reaches the path that was matched.

Refused (``None``, answered 400): a path that does not start with ``/``, a malformed escape (``%zz``, ``%4``),
and an encoded ``/`` or ``\\`` (``%2F``, ``%5C``) or NUL (``%00``), whose meaning differs between upstreams.

The upstream is sent the normalised (still encoded) path; routing matches its percent-decoded form. With
encoded slashes refused, the two name the same resource.
"""

from __future__ import annotations

from urllib.parse import unquote

_HEX = frozenset("0123456789abcdefABCDEF")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_REFUSED_ESCAPES = frozenset({"2F", "5C", "00"})


def normalize_path(raw: str) -> str | None:
    """The normalised encoded path, or None when the path is refused (see the module docstring)."""
    if raw[:1] != "/":
        return None
    if "%" in raw:
        decoded = _decode_unreserved(raw)
        if decoded is None:
            return None
        raw = decoded
    if "/." in raw:
        raw = remove_dot_segments(raw)
    return raw


def _decode_unreserved(raw: str) -> str | None:
    parts = raw.split("%")
    out = [parts[0]]
    for part in parts[1:]:
        code = part[:2]
        if len(code) < 2 or code[0] not in _HEX or code[1] not in _HEX:
            return None
        code = code.upper()
        if code in _REFUSED_ESCAPES:
            return None
        ch = chr(int(code, 16))
        out.append((ch if ch in _UNRESERVED else "%" + code) + part[2:])
    return "".join(out)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path (starts with ``/``)."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def decoded(path: str) -> str:
    """The percent-decoded form of a normalised path: what routes and rules match (UTF-8, surrogate escapes
    for bytes that are not)."""
    return unquote(path, errors="surrogateescape") if "%" in path else path
