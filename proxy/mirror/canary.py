"""Send a mirrored request to the canary and read its answer to the end (the background side of a shadow)."""

from __future__ import annotations

from dataclasses import dataclass

from graylane.proxy.request import ClientRequest
from graylane.proxy.upstream import forward
from graylane.proxy.upstream.client import ERROR_STATUS, UpstreamError

from graylane.routing.mirror import AnswerPrint, MirrorPlan


@dataclass(frozen=True, slots=True)
class CanaryAnswer:
    """The canary's side of a pair: its status code (or the proxy's for a failure), and the fingerprint of a
    complete answer; ``error`` is the upstream error reason when there is no complete answer."""

    code: int
    answer: AnswerPrint | None = None
    error: str | None = None


async def ask_canary(
    request: ClientRequest, out: forward.Outgoing, target: forward.Target, mirror: MirrorPlan
) -> CanaryAnswer:
    """Send ``out`` (a buffered copy of the client's request) to the canary; upstream errors are answers."""
    try:
        conn = await forward.send(request, out, target)
    except UpstreamError as exc:
        return CanaryAnswer(ERROR_STATUS[exc.reason], error=exc.reason)
    answer = AnswerPrint(conn.status, conn.head.kept(), mirror)
    try:
        if conn.complete:
            for chunk in conn.chunks:
                answer.feed(chunk)
        else:
            while data := await conn.read_body(within=target.timeout):
                answer.feed(data)
    except UpstreamError:
        conn.abort()
        return CanaryAnswer(conn.status, error="truncated")
    except BaseException:
        conn.abort()
        raise
    target.pool.release(conn)
    return CanaryAnswer(conn.status, answer)
