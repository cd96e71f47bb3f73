"""A URLRewrite's path: the target the upstream gets instead of the client's (``routing/filters.py``)."""

from __future__ import annotations

from urllib.parse import quote

from graylane.proxy.request import ClientRequest
from graylane.proxy.target import ClientTarget

from graylane.routing.filters import replace_path
from graylane.routing.table import Decision

_PCHAR = "/:@!$&'()*+,;=-._~%"


def rewritten(
    decision: Decision, request: ClientRequest, where: ClientTarget | None, path: str
) -> ClientTarget:
    """The request's target with its path rewritten; the query is kept as it came.

    The prefix is replaced in the target as sent (its escapes kept) when the matched prefix appears there
    as it matched; otherwise in the decoded ``path``, escaped again."""
    raw = where.target.decode("utf-8", "surrogateescape") if where is not None else request.raw_path
    raw_path, sep, query = raw.partition("?")
    matched = decision.matched
    aligned = raw_path.startswith(matched) and raw_path[len(matched) : len(matched) + 1] in ("", "/")
    source = raw_path if aligned or not matched else quote(path, safe=_PCHAR, errors="surrogateescape")
    target = replace_path(decision.rewrite, matched, source) + sep + query
    authority = where.authority if where is not None else b""
    return ClientTarget(authority, path, target.encode("utf-8", "surrogateescape"))
