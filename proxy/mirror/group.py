"""Several RequestMirrors of one request (a Gateway API rule with more than one): every call of the client
path goes to each shadow, and one tee of a streamed body feeds them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graylane.proxy.upstream.client import UpstreamConnection
from graylane.proxy.upstream.forward import Outgoing

from graylane.routing.mirror import AnswerPrint

if TYPE_CHECKING:
    from graylane.proxy.mirror.shadow import Shadow


class MirrorGroup:
    """Duck-types :class:`~graylane.proxy.mirror.shadow.Shadow` for the client path; never raises."""

    __slots__ = ("shadows",)

    def __init__(self, shadows: list[Shadow]) -> None:
        self.shadows = shadows

    def prepared(self, out: Outgoing) -> None:
        for shadow in self.shadows:
            shadow.prepared(out)
        if out.streamed:
            out.tee = self

    def piece(self, data: bytes) -> None:
        for shadow in self.shadows:
            shadow.piece(data)

    def body_end(self) -> None:
        for shadow in self.shadows:
            shadow.body_end()

    def stable_print(self, conn: UpstreamConnection) -> AnswerPrint:
        return AnswerPrint(conn.status, conn.head.kept(), self.shadows[0].mirror)  # as Shadow.stable_print

    def stable_whole(self, conn: UpstreamConnection) -> None:
        for shadow in self.shadows:
            shadow.stable_whole(conn)

    def stable_end(self, answer: AnswerPrint | None) -> None:
        for shadow in self.shadows:
            shadow.stable_end(answer)

    def client_done(self) -> None:
        for shadow in self.shadows:
            shadow.client_done()
