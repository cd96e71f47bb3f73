"""Shadow traffic on the proxy: a copy of a request routed to stable goes to the canary in the background.

The client path only *hands things over*, and never waits for, reads from or fails because of the canary:

* :meth:`Mirrors.open` (when ``decide`` chose stable and the route's mirror share holds) reserves one of
  ``--mirror-max-in-flight`` slots, or counts ``dropped`` (no slot) or ``too-large`` (``Content-Length``
  over ``maxBodyBytes``) and returns None;
* the client's body goes to stable as before; the shadow keeps a copy of it as it passes, up to
  ``maxBodyBytes`` (:meth:`Shadow.piece`; past that the copy is dropped and counted ``too-large``);
* once the body is complete, a background task sends the copy to the canary (``X-Graylane-Track: mirror``)
  and reads its answer to the end (``canary.py``);
* stable's answer is fingerprinted as it goes to the client (:meth:`Shadow.stable_whole`,
  :meth:`Shadow.stable_print`); whatever the client path could not finish ends as ``unpaired``
  (:meth:`Shadow.client_done`).

The task compares the two (``graylane.routing.mirror.compare``) and counts one result per shadow in
``graylane_mirror_total``; the canary's code and time go to ``graylane_requests_total`` and
``graylane_request_duration_seconds`` under ``track="mirror"``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from graylane.proxy.metrics import Metrics
from graylane.proxy.mirror.canary import CanaryAnswer, ask_canary
from graylane.proxy.request import ClientRequest
from graylane.proxy.upstream.client import UpstreamConnection
from graylane.proxy.upstream.forward import Outgoing, Target

from graylane.config.mirrorblock import CANARY_ERROR, UNPAIRED
from graylane.routing.mirror import AnswerPrint, MirrorPlan, compare

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RoutePlan

log = logging.getLogger("graylane.proxy")
STABLE_GRACE = 5.0  # seconds past stable's timeout that the task waits for stable's answer


class Mirrors:
    """This worker's mirrored requests: at most ``limit`` at once, each a task no client path awaits."""

    def __init__(self, *, metrics: Metrics, limit: int) -> None:
        self.metrics = metrics
        self.limit = limit
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def open(self, plan: RoutePlan, mirror: MirrorPlan, request: ClientRequest) -> Shadow | None:
        """A shadow for this request, or None (counted: ``too-large`` or ``dropped``)."""
        length = request.content_length
        if length is not None and length > mirror.max_body:
            self.metrics.mirrored(plan.label, "too-large")
            return None
        if self.in_flight >= self.limit:
            self.metrics.mirrored(plan.label, "dropped")
            return None
        self.in_flight += 1
        return Shadow(self, plan, mirror, request)

    def launch(self, shadow: Shadow, out: Outgoing) -> None:
        task = asyncio.get_running_loop().create_task(shadow.run(out))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def close(self) -> None:
        """Shutdown: the canary's answers no longer matter."""
        for task in list(self.tasks):
            task.cancel()


class Shadow:
    """One mirrored request (see the module docstring). Every method the client path calls is synchronous,
    cheap and never raises."""

    __slots__ = (
        "_body", "_out", "_size", "_waiter", "baseline", "ended", "mirror", "mirrors", "plan", "request",
        "settled",
    )  # fmt: skip

    def __init__(self, mirrors: Mirrors, plan: RoutePlan, mirror: MirrorPlan, request: ClientRequest) -> None:
        self.mirrors = mirrors
        self.plan = plan
        self.mirror = mirror
        self.request = request
        self.baseline: AnswerPrint | None = None  # stable's answer, once ``settled``
        self.settled = False
        self._waiter: asyncio.Future[None] | None = None  # only when the canary answered first
        self.ended = False  # a result was counted and the slot given back
        self._body: list[bytes] | None = None  # the copy of a streamed body so far
        self._out: Outgoing | None = None
        self._size = 0

    # -- the client's body ---------------------------------------------------------------------------

    def prepared(self, out: Outgoing) -> None:
        """The request as it goes to stable: a body at hand is copied now, a streamed one as it passes."""
        if out.streamed:
            self._body, self._out = [], out
            out.tee = self
        else:
            self._launch(out, out.body or b"")

    def piece(self, data: bytes) -> None:
        body = self._body
        if body is None:
            return
        self._size += len(data)
        if self._size > self.mirror.max_body:
            self._body = None
            self.end("too-large")
        else:
            body.append(data)

    def body_end(self) -> None:
        body, out = self._body, self._out
        self._body = None
        if body is not None and out is not None and not self.ended:
            self._launch(out, b"".join(body))

    def _launch(self, out: Outgoing, body: bytes) -> None:
        framing = b"Content-Length: %d\r\n" % len(body) if body or out.framing else b""
        copy = Outgoing(
            out.method, out.target, out.fwd, body or None, False, framing, out.max_body, host=out.host
        )
        self.mirrors.launch(self, copy)

    # -- stable's answer -----------------------------------------------------------------------------

    def stable_print(self, conn: UpstreamConnection) -> AnswerPrint:
        """The fingerprint of stable's answer from its head; feed it the body pieces as they are streamed."""
        return AnswerPrint(conn.status, conn.head.kept(), self.mirror)

    def stable_whole(self, conn: UpstreamConnection) -> None:
        """Stable's answer arrived whole with its head."""
        answer = self.stable_print(conn)
        if self.mirror.compare_body:
            for chunk in conn.chunks:
                answer.feed(chunk)
        self.stable_end(answer)

    def stable_end(self, answer: AnswerPrint | None) -> None:
        """Stable's answer went to the client (None: it did not, or not completely)."""
        if not self.settled:
            self.settled, self.baseline = True, answer
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def client_done(self) -> None:
        """The client path is over: a body copy never completed or stable's answer never came are final."""
        if self._body is not None:
            self._body = None
            self.end(UNPAIRED)
        self.stable_end(None)

    # -- the background task -------------------------------------------------------------------------

    async def run(self, out: Outgoing) -> None:
        loop = asyncio.get_running_loop()
        target = self.plan.targets[(self.plan.config.canary, "mirror")]
        started = loop.time()
        try:
            got = await ask_canary(self.request, out, target, self.mirror)
            self.record(got, loop.time() - started)
            canary = got.answer
            if canary is None:
                return
            stable = await self._stable(self.plan.targets[(self.plan.config.stable, "stable")])
            self.end(UNPAIRED if stable is None else compare(stable, canary))
        except asyncio.CancelledError:
            self.release()
            raise
        except Exception:  # a mirror must never take anything down with it
            log.exception("mirrored request failed")
            self.end(CANARY_ERROR)

    def record(self, got: CanaryAnswer, seconds: float) -> None:
        """The canary's side in the per-track metrics; an answer never sent is only ``dropped``."""
        metrics, label = self.mirrors.metrics, self.plan.label
        if got.error == "overflow":
            self.end("dropped")
            return
        if got.error is not None:
            metrics.upstream_error(label, "mirror", got.error)
        metrics.request_done(label, "mirror", str(got.code), seconds)
        if got.error is not None:
            self.end(CANARY_ERROR)

    async def _stable(self, stable: Target) -> AnswerPrint | None:
        if self.settled:  # the usual case: stable answered first (no future, no timer)
            return self.baseline
        self._waiter = asyncio.get_running_loop().create_future()
        try:  # every client path settles it; the timeout only guards the slot against a path that did not
            async with asyncio.timeout(stable.timeout + STABLE_GRACE):
                await self._waiter
        except TimeoutError:
            return None
        return self.baseline

    def end(self, result: str) -> None:
        if not self.ended:
            self.mirrors.metrics.mirrored(self.plan.label, result)
            self.release()

    def release(self) -> None:
        if not self.ended:
            self.ended = True
            self.mirrors.in_flight -= 1
