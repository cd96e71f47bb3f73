"""What a request asks for, checked the same way on both servers before any route is looked up.

* Version: HTTP/1.0 and HTTP/1.1 only; an HTTP/0.9 request line (``GET /``) is 400, any other version
  (``HTTP/2.0``) is 505.
* ``Transfer-Encoding``: exactly ``chunked`` or nothing (the fast server refuses the rest while parsing;
  aiohttp's parsers take ``identity, chunked`` or ``gzip, chunked`` as chunked): 400.
* Absolute-form (``GET http://h.test/x``, RFC 9112 §3.2.2): its authority wins over ``Host`` for routing,
  and is what the upstream gets as ``X-Forwarded-Host``; userinfo or a scheme other than http(s): 400.
* The path: one normalisation (``routing.pathnorm``: unreserved escapes decoded, dot segments removed;
  encoded ``/``, ``\\``, NUL or a malformed escape: 400) before lookup and matching, and the upstream is
  sent exactly that path.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from graylane.routing.pathnorm import decoded, normalize_path

_VERSIONS = frozenset({(1, 0), (1, 1)})


class ClientTarget:
    """A request target that is not sent on as it came: the path routing matches, the target to send."""

    __slots__ = ("authority", "path", "target")

    def __init__(self, authority: bytes, path: str, target: bytes) -> None:
        self.authority = authority  # b"" or the absolute-form authority (wins over Host)
        self.path = path  # percent-decoded, normalised: what routes and rules match
        self.target = target  # origin-form, normalised, for the upstream


def check_target(request: Any) -> ClientTarget | int | None:
    """None: route and send the request as it came (the common case); an int: the status to refuse it
    with; otherwise the normalised target."""
    if request.version not in _VERSIONS:
        return 400 if request.version < (1, 0) else 505
    te = request.headers.get("transfer-encoding")
    if te is not None and te.strip().lower() != "chunked":
        return 400
    raw: str = request.raw_path
    if raw[:1] != "/":
        return None if raw == "*" else _absolute(raw)
    path, sep, query = raw.partition("?")
    if "%" not in path and "/." not in path:
        return None
    return _normalised(b"", path, sep + query)


def _normalised(authority: bytes, path: str, rest: str) -> ClientTarget | int:
    norm = normalize_path(path)
    if norm is None:
        return 400
    return ClientTarget(authority, decoded(norm), (norm + rest).encode("utf-8", "surrogateescape"))


def _absolute(raw: str) -> ClientTarget | int:
    try:
        url = URL(raw, encoded=True)
    except ValueError:
        return 400
    if url.scheme not in ("http", "https") or not url.raw_host or url.raw_user or url.raw_password:
        return 400
    authority = url.raw_authority.encode("ascii", "replace")
    query = url.raw_query_string
    return _normalised(authority, url.raw_path or "/", "?" + query if query else "")
