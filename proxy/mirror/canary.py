"""One mirrored request on the canary, from sending the copy to the end of the canary's answer.

Like the client path's ``Exchange`` (``routing/handler.py``), the common case costs no task and no future: a
copy that finds an idle keep-alive connection to the canary is sent at once and its answer arrives through the
connection's ``listener`` callback. Connecting first, a retry on a fresh connection (a reused connection the
canary had closed), and an answer whose body is still arriving continue as a task (``spawn``). Whatever
happens, ``done`` is called once with a :class:`CanaryAnswer` -- except on shutdown, when the task is
cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from graylane.proxy.request import ClientRequest
from graylane.proxy.upstream import forward
from graylane.proxy.upstream.client import ERROR_STATUS, UpstreamConnection, UpstreamError

from graylane.routing.mirror import AnswerPrint, MirrorPlan

Spawn = Callable[[Coroutine[Any, Any, None]], None]


@dataclass(frozen=True, slots=True)
class CanaryAnswer:
    """The canary's side of a pair: its status code (or the proxy's for a failure), and the fingerprint of a
    complete answer; ``error`` is the upstream error reason when there is no complete answer."""

    code: int
    answer: AnswerPrint | None = None
    error: str | None = None


class CanaryCall:
    """Send ``out`` (a buffered copy of the client's request) to the canary; report to ``done``."""

    __slots__ = ("done", "mirror", "out", "request", "spawn", "target")

    def __init__(
        self,
        request: ClientRequest,
        out: forward.Outgoing,
        target: forward.Target,
        mirror: MirrorPlan,
        *,
        done: Callable[[CanaryAnswer], None],
        spawn: Spawn,
    ) -> None:
        self.request = request
        self.out = out
        self.target = target
        self.mirror = mirror
        self.done = done
        self.spawn = spawn

    def begin(self) -> None:
        conn = self.target.pool.take_idle()
        if conn is None:
            self.spawn(self._ask(fresh=False))
            return
        conn.listener = self._on_answer
        forward.start_exchange(self.request, self.out, self.target, conn)

    def _on_answer(self, conn: UpstreamConnection) -> None:
        """The canary's head (usually its whole answer) is in, or the exchange failed."""
        conn.disarm()
        error = conn.error
        if error is None and conn.complete:
            self.done(self._whole(conn))
        elif error is None:
            self.spawn(self._rest(conn))
        elif forward.retryable(error, self.out, reused=True):
            self.spawn(self._ask(fresh=True))
        else:
            self.done(CanaryAnswer(ERROR_STATUS[error.reason], error=error.reason))

    async def _ask(self, *, fresh: bool) -> None:
        try:
            conn = await forward.send(self.request, self.out, self.target, fresh=fresh)
        except UpstreamError as exc:
            self.done(CanaryAnswer(ERROR_STATUS[exc.reason], error=exc.reason))
            return
        if conn.complete:
            self.done(self._whole(conn))
        else:
            await self._rest(conn)

    async def _rest(self, conn: UpstreamConnection) -> None:
        """Read an answer whose body is still arriving (only its first ``maxBodyBytes`` are hashed)."""
        answer = AnswerPrint(conn.status, conn.head.kept(), self.mirror)
        try:  # read_body hands over what is buffered first (and resumes a paused connection)
            while data := await conn.read_body(within=self.target.timeout):
                answer.feed(data)
        except UpstreamError:
            conn.abort()
            self.done(CanaryAnswer(conn.status, error="truncated"))
            return
        except BaseException:
            conn.abort()
            raise
        self.target.pool.release(conn)
        self.done(CanaryAnswer(conn.status, answer))

    def _whole(self, conn: UpstreamConnection) -> CanaryAnswer:
        answer = AnswerPrint(conn.status, conn.head.kept(), self.mirror)
        if answer.compares_body:
            for chunk in conn.chunks:
                answer.feed(chunk)
        self.target.pool.release(conn)
        return CanaryAnswer(conn.status, answer)
