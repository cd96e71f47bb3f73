"""The client request as the routing, forwarding and WebSocket code read it, whichever server took it.

:class:`FastRequest` is the fast server's request object (``server/protocol.py``), built cheaply from
httptools' callbacks, plus the client side of a streamed response. It duck-types the part of aiohttp's
``web.BaseRequest`` that ``routing/``, ``upstream/`` and ``websocket/`` use (``ClientRequest`` is the union
both servers satisfy), so that code is shared by the two servers and sits below both of them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from aiohttp import web
from graylane.proxy.errors import ClientGone
from yarl import URL

if TYPE_CHECKING:
    from graylane.proxy.upstream.client import UpstreamConnection

RawHeaders = tuple[tuple[bytes, bytes], ...]


_MISSING: Any = object()
BODY_HIGH_WATER = 256 * 1024


class BodyStream:
    """A request body as the parser delivers it; reading it resumes the paused client connection."""

    __slots__ = ("_buffered", "_chunks", "_conn", "_error", "_waiter", "eof")

    def __init__(self, conn: BodyOwner) -> None:
        self._conn = conn
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.eof = False

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > BODY_HIGH_WATER:
            self._conn.pause_body()
        self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        if not self.eof:
            self.eof = True
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def readany(self) -> bytes:
        while not self._chunks:
            if self.eof:
                if self._error is not None:
                    raise self._error
                return b""
            await self._wait()
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._buffered <= BODY_HIGH_WATER // 4:
            self._conn.resume_body()
        return data

    async def readexactly(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            try:
                data = await self.readany()
            except Exception:
                data = b""
            if not data:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(data)
            got += len(data)
        whole = b"".join(parts)
        if got > n:  # cannot happen with Content-Length framing; keep the rest readable anyway
            self._chunks.appendleft(whole[n:])
            self._buffered += got - n
        return whole[:n]


class BodyOwner(Protocol):
    """What a :class:`BodyStream` needs from its connection (flow control)."""

    def pause_body(self) -> None: ...

    def resume_body(self) -> None: ...


class _NoBody:
    def pause_body(self) -> None:
        return None

    def resume_body(self) -> None:
        return None


NO_BODY = BodyStream(_NoBody())
"""The ``content`` of every request without a body: at its end from the start, never fed."""
NO_BODY.eof = True


class HeaderMap(dict[str, str]):
    """The request headers as routing reads them: lower-case name -> first value (``get`` is dict's own,
    so callers pass lower-case names), and ``getall`` for every value of a name.

    Names are decoded as Latin-1 and lower-cased, values as UTF-8 with surrogate escapes (as aiohttp does);
    a cheaper stand-in for ``CIMultiDictProxy`` on the hot path.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(pairs)
        self._more: dict[str, list[str]] | None = None  # second and later values of repeated names

    @classmethod
    def of(cls, raw: RawHeaders) -> HeaderMap:
        pairs = [(n.decode("latin-1").lower(), v.decode("utf-8", "surrogateescape")) for n, v in raw]
        headers = cls(reversed(pairs))  # reversed: the first value of a repeated name wins
        if len(headers) != len(pairs):
            more: dict[str, list[str]] = {}
            seen: set[str] = set()
            for name, value in pairs:
                if name in seen:
                    more.setdefault(name, []).append(value)
                seen.add(name)
            headers._more = more
        return headers

    def repeated(self, key: str) -> bool:
        """Whether ``key`` (a lower-case name) was sent more than once."""
        return self._more is not None and key in self._more

    def getall(self, key: str, default: Any = _MISSING) -> Any:
        """Every value of ``key`` (a lower-case name), in order; ``default`` (or KeyError) when absent."""
        value = self.get(key)
        if value is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        more = self._more.get(key) if self._more is not None else None
        return [value, *more] if more else [value]


class FastRequest:
    """One parsed client request (the head; the body arrives through ``content``)."""

    __slots__ = (
        "_headers", "_rel_url", "body_exists", "content", "content_length", "keep_alive", "method",
        "path", "query_string", "raw_headers", "raw_path", "remote", "transport", "upgrade", "version",
        "writer",
    )  # fmt: skip

    def __init__(
        self,
        *,
        method: str,
        target: bytes,
        raw_headers: RawHeaders,
        version: tuple[int, int],
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        conn: BodyOwner,
        transport: asyncio.Transport,
        remote: str,
    ) -> None:
        self.method = method
        self.raw_path = target.decode("utf-8", "surrogateescape")
        self.raw_headers = raw_headers
        self.version = version
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.body_exists = chunked or bool(content_length)
        self.content = BodyStream(conn) if self.body_exists else NO_BODY
        self.transport: asyncio.Transport | None = transport
        self.remote = remote
        self._headers: HeaderMap | None = None
        self._rel_url: URL | None = None
        self.writer: StreamWriter | None = None
        self.upgrade = False  # a WebSocket upgrade the connection holds for the tunnel (tunnel.py)
        self.path, self.query_string = _split_target(self.raw_path)

    @property
    def headers(self) -> HeaderMap:
        headers = self._headers
        if headers is None:
            headers = self._headers = HeaderMap.of(self.raw_headers)
        return headers

    @property
    def rel_url(self) -> URL:
        if self._rel_url is None:
            url = URL(self.raw_path, encoded=True)
            self._rel_url = url.relative() if url.is_absolute() else url
        return self._rel_url


def _split_target(raw: str) -> tuple[str, str]:
    """The decoded path and query string, as aiohttp's request gives them (yarl only when needed)."""
    if raw[:1] != "/":  # absolute-form (or "*"): what the URL says
        url = URL(raw, encoded=True)
        return url.path or "/", url.query_string
    path, _, query = raw.partition("?")
    if "%" in path:
        path = URL.build(path=path, encoded=True).path
    if "%" in query or "+" in query:
        query = URL.build(query_string=query, encoded=True).query_string
    return path, query


class StreamWriter:
    """The client side of a streamed response: writes with flow control, knows whether it started."""

    __slots__ = ("_drain", "_transport", "paused", "started")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._drain: asyncio.Future[None] | None = None
        self.paused = False
        self.started = False

    def write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ClientGone("client went away")
        self.started = True
        self._transport.write(data)

    async def drain(self) -> None:
        if self.paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused and self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def lost(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ClientGone("client went away"))


class Streamed:
    """A response already written to the client by :func:`stream` (the server writes nothing more)."""

    __slots__ = ("keep_alive", "status")

    def __init__(self, status: int, keep_alive: bool) -> None:
        self.status = status
        self.keep_alive = keep_alive


async def stream(
    request: FastRequest,
    conn: UpstreamConnection,
    head: bytes,
    *,
    chunked: bool,
    limit: float,
    tee: Callable[[bytes], None] | None = None,
) -> bool:
    """Write ``head`` and the upstream body to the client; False when the upstream body broke off.
    ``tee`` gets each piece of the body as well."""
    writer = request.writer
    assert writer is not None
    writer.write(head)
    while True:
        try:
            data = await conn.read_body(within=limit)
        except Exception:
            return False
        if not data:
            if chunked:
                writer.write(b"0\r\n\r\n")
            return True
        if tee is not None:
            tee(data)
        writer.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
        await writer.drain()


ClientRequest: TypeAlias = web.BaseRequest | FastRequest


__all__ = ["ClientGone", "ClientRequest", "FastRequest", "HeaderMap", "StreamWriter", "Streamed", "stream"]
