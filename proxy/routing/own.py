"""Answers a route gives itself (schema-2 documents): a RequestRedirect's, or 500 for no valid backend."""

from __future__ import annotations

from graylane.proxy.answers import ErrorAnswer
from graylane.proxy.request import ClientRequest
from graylane.proxy.target import ClientTarget

from graylane.routing.httprules import redirect_location
from graylane.routing.table import Decision


def own_answer(
    decision: Decision,
    request: ClientRequest,
    *,
    host: str,
    scheme: bytes,
    where: ClientTarget | None,
    port: int,
) -> ErrorAnswer:
    """The answer for a decision with a ``status``; a redirect's ``Location`` keeps what it does not set."""
    location = None
    if decision.redirect is not None:
        target = where.target.decode("utf-8", "surrogateescape") if where is not None else request.raw_path
        path, _, query = target.partition("?")
        location = redirect_location(decision, scheme=scheme.decode("ascii"), host=host, port=port, path=path,
                                     query=query)  # fmt: skip
    return ErrorAnswer(decision.status, location=location)
