"""Shadow traffic on the proxy: a copy of a request routed to stable goes to the canary in the background.

The client path only *hands things over*, and never waits for, reads from or fails because of the canary:

* :meth:`Mirrors.open` (when ``decide`` chose stable and the route's mirror share holds) reserves one of
  ``--mirror-max-in-flight`` slots, or counts ``dropped`` (no slot) or ``too-large`` (``Content-Length``
  over ``maxBodyBytes``) and returns None;
* the client's body goes to stable as before; the shadow keeps a copy of it as it passes, up to
  ``maxBodyBytes`` (:meth:`Shadow.piece`; past that the copy is dropped and counted ``too-large``);
* once the body is complete, the copy goes to the canary (``X-Graylane-Track: mirror``) in the background
  and its answer is read to the end (``canary.py``: callbacks on an idle connection, else a task);
* stable's answer is fingerprinted as it goes to the client (:meth:`Shadow.stable_whole`,
  :meth:`Shadow.stable_print`); whatever the client path could not finish ends as ``unpaired``
  (:meth:`Shadow.client_done`).

Whichever side ends last compares the two (``graylane.routing.mirror.compare``); one result per shadow in
``graylane_mirror_total``; the canary's code and time go to ``graylane_requests_total`` and
``graylane_request_duration_seconds`` under ``track="mirror"``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from graylane.proxy.deadlines import NEVER, Deadlines
from graylane.proxy.metrics import Metrics
from graylane.proxy.mirror.canary import CanaryAnswer, CanaryCall
from graylane.proxy.mirror.group import MirrorGroup
from graylane.proxy.request import ClientRequest
from graylane.proxy.upstream.client import UpstreamConnection
from graylane.proxy.upstream.forward import Outgoing

from graylane.config.mirrorblock import CANARY_ERROR, UNPAIRED
from graylane.routing.mirror import AnswerPrint, MirrorPlan, compare, mirrored
from graylane.routing.request import RequestView
from graylane.routing.table import CompiledRoute

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RoutePlan

log = logging.getLogger("graylane.proxy")
GOLDEN = 0.6180339887498949
STABLE_GRACE = 5.0  # seconds past stable's timeout that a canary's answer waits for stable's


class Mirrors:
    """This worker's mirrored requests: at most ``limit`` at once; no client path ever waits for one."""

    def __init__(self, *, metrics: Metrics, limit: int) -> None:
        self.metrics = metrics
        self.limit = limit
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def consider(
        self, plan: RoutePlan, route: CompiledRoute, view: RequestView, request: ClientRequest, sample: float
    ) -> Shadow | None:
        """A request routed to stable on a mirroring route: its shadow, if it is in the share (never an
        upgrade: WebSockets are not mirrored)."""
        mirror = route.mirror
        if mirror is None or not mirrored(mirror, route.sticky_keys, view, sample):
            return None
        if request.headers.get("upgrade") is not None:
            return None
        return self.open(plan, mirror, request)

    def consider_rule(
        self, plan: RoutePlan, track: str, view: RequestView, request: ClientRequest, sample: float
    ) -> Shadow | MirrorGroup | None:
        """A Gateway API rule's RequestMirrors (``routing/rules.py``): fire and forget, each in its share
        (the k-th mirror's sample is shifted by k times the golden ratio, so shares do not coincide)."""
        copies = plan.mirrors.get(track)
        if not copies or request.headers.get("upgrade") is not None:
            return None
        shadows = []
        for k, copy in enumerate(copies):
            if mirrored(copy.plan, (), view, (sample + k * GOLDEN) % 1.0):
                shadow = self.open(plan, copy.plan, request, target=copy.target, wait=copy.wait)
                if shadow is not None:
                    shadows.append(shadow)
        if len(shadows) < 2:
            return shadows[0] if shadows else None
        return MirrorGroup(shadows)

    def open(
        self, plan: RoutePlan, mirror: MirrorPlan, request: ClientRequest,
        *, target: tuple[str, str] | None = None, wait: float | None = None,
    ) -> Shadow | None:  # fmt: skip
        """A shadow for this request, or None (counted: ``too-large`` or ``dropped``); ``target`` is where
        the copy goes (the canary's mirror target by default), ``wait`` the primary's timeout."""
        length = request.content_length
        if length is not None and length > mirror.max_body:
            self.metrics.mirrored(plan.label, "too-large")
            return None
        if self.in_flight >= self.limit:
            self.metrics.mirrored(plan.label, "dropped")
            return None
        self.in_flight += 1
        config = plan.config
        key = target or (config.canary, "mirror")
        if wait is None:
            wait = config.upstreams[config.stable].timeout_seconds
        return Shadow(self, plan, mirror, request, key, wait)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(work)
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
        "_body", "_out", "_size", "baseline", "canary", "deadline", "ended", "key", "mirror", "mirrors",
        "plan", "request", "settled", "started", "wait",
    )  # fmt: skip

    def __init__(
        self, mirrors: Mirrors, plan: RoutePlan, mirror: MirrorPlan, request: ClientRequest,
        key: tuple[str, str], wait: float,
    ) -> None:  # fmt: skip
        self.mirrors = mirrors
        self.key = key  # the copy's target in ``plan.targets``
        self.wait = wait  # the primary's timeout: how long the copy's answer waits for it
        self.plan = plan
        self.mirror = mirror
        self.request = request
        self.baseline: AnswerPrint | None = None  # stable's answer, once ``settled``
        self.settled = False
        self.canary: AnswerPrint | None = None  # the canary's, when it answered before stable
        self.deadline = NEVER  # while the canary's answer waits for stable's (``expire``)
        self.started = 0.0
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
        target = self.plan.targets[self.key]
        self.started = self.mirrors.loop.time()
        CanaryCall(self.request, copy, target, self.mirror, done=self.canary_done, spawn=self.spawn).begin()

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
        if self.settled:
            return
        self.settled, self.baseline = True, answer
        canary = self.canary
        if canary is not None:  # the canary was faster: compare now
            self.end(UNPAIRED if answer is None else compare(answer, canary))

    def client_done(self) -> None:
        """The client path is over: a body copy never completed or stable's answer never came are final."""
        if self._body is not None:
            self._body = None
            self.end(UNPAIRED)
        self.stable_end(None)

    # -- the canary's side ---------------------------------------------------------------------------

    def canary_done(self, got: CanaryAnswer) -> None:
        """The canary answered (or failed): counted now; compared now, or when stable's answer settles."""
        try:
            self.record(got, self.mirrors.loop.time() - self.started)
            canary = got.answer
            if canary is None or self.ended:
                return
            if self.settled:
                self.end(UNPAIRED if self.baseline is None else compare(self.baseline, canary))
                return
            self.canary = canary  # every client path settles stable's side; the deadline guards the slot
            deadlines = self._deadlines()
            self.deadline = deadlines.now() + self.wait + STABLE_GRACE
            deadlines.watch(self)
        except Exception:  # a mirror never takes anything down with it
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

    def expire(self) -> None:
        """Stable's side never settled (a client path that did not say so): the slot is given back."""
        self._deadlines().forget(self)
        self.end(UNPAIRED)

    async def guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """A part of the canary's side that runs as a task: a bug in it is logged, never raised."""
        try:
            await work
        except Exception:
            log.exception("mirrored request failed")
            self.end(CANARY_ERROR)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.mirrors.spawn(self.guarded(work))

    def end(self, result: str) -> None:
        if not self.ended:
            self.ended = True
            self.mirrors.in_flight -= 1
            self.mirrors.metrics.mirrored(self.plan.label, result)
            if self.deadline != NEVER:
                self.deadline = NEVER
                self._deadlines().forget(self)

    def _deadlines(self) -> Deadlines:
        return self.plan.targets[self.key].pool.deadlines
