"""What crosses the proxy: the upstream request head and the client response headers.

Hop-by-hop headers (RFC 9110 §7.6.1) and every header named in ``Connection`` are dropped in both directions.
Towards the upstream the proxy owns ``Host`` (the upstream's authority), framing (``Content-Length`` or
``Transfer-Encoding: chunked``, never both), ``X-Forwarded-For`` (the peer appended), ``X-Forwarded-Proto`` /
``X-Forwarded-Host`` (kept only from a trusted proxy), ``X-Real-IP`` (the resolved client IP),
``X-Graylane-Track`` (any client copy removed) and the route's ``requestHeaders`` for the chosen track.

Client header names with ``_`` are dropped (``--allow-underscore-headers`` forwards them): WSGI/CGI-style
upstreams fold ``_`` and ``-`` together, so ``X_Graylane_Track`` would reach them as the proxy's own
header. A name that folds onto one the proxy owns, a framing or hop-by-hop header, a ``requestHeaders``
name or a name the client's ``Connection`` lists is dropped even when underscores are allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from ipaddress import IPv4Address, IPv6Address

from graylane.lru import Lru
from graylane.routing.request import IpKey

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
REQUEST_OWNED = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",
        b"x-graylane-track",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
        b"forwarded",
    }
)
RESPONSE_DROP = HOP_BY_HOP | {b"content-length"}
_DROP_LENGTHS = frozenset(len(name) for name in RESPONSE_DROP)
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})  # name no header that is not dropped anyway
TRACK_HEADER = b"X-Graylane-Track"
PROXY_OWNED = HOP_BY_HOP | REQUEST_OWNED  # dropped from every client request (the proxy sets its own)

RawHeaders = Sequence[tuple[bytes, bytes]]
IPAddress = IPv4Address | IPv6Address
_PLANS: Lru[tuple[object, ...], TrackHeaders] = Lru(4096)
_DROPS: Lru[frozenset[bytes], frozenset[bytes]] = Lru(1024)


def _shared(drop: frozenset[bytes]) -> frozenset[bytes]:
    """One set for every plan that replaces the same names (a route's stable and canary flags)."""
    found = _DROPS.get(drop)
    if found is None:
        _DROPS.put(drop, drop)
        found = drop
    return found


@dataclass(frozen=True, slots=True)
class TrackHeaders:
    """Compiled once per route and track: names to drop from the client request, bytes to append."""

    drop: frozenset[bytes]  # the names the proxy owns: one set shared by every plan
    extra: bytes
    underscores: bool = False  # forward client names with "_" (never those that fold onto ``drop``)
    preserve_host: bool = False  # the upstream gets the client's Host (HTTPRoute), not its own authority
    host: bytes = b""  # a URLRewrite's hostname: the upstream's Host whatever the client sent
    own: frozenset[bytes] = frozenset()  # the route's own set/removed names (shared between equal sets)

    @classmethod
    def compile(
        cls, track: str | None, set_headers: Mapping[str, str], *, underscores: bool = False,
        add: Mapping[str, str] | None = None, remove: Iterable[str] = (), preserve_host: bool = False,
        host: str = "",
    ) -> TrackHeaders:  # fmt: skip
        """``set`` replaces client values, ``add`` appends to them, ``remove`` drops them; ``track`` None:
        no ``X-Graylane-Track`` (a Gateway API rule; a client's copy is dropped all the same).

        Plans are frozen: equal arguments give the same object (10,000 routes share a handful of plans
        instead of holding a 20-name drop set per track each)."""
        key = (track, tuple(set_headers.items()), underscores, tuple((add or {}).items()), tuple(remove),
               preserve_host, host)  # fmt: skip
        found = _PLANS.get(key)
        if found is None:
            found = cls._compile(track, set_headers, underscores, add, remove, preserve_host, host)
            _PLANS.put(key, found)
        return found

    @classmethod
    def _compile(
        cls, track: str | None, set_headers: Mapping[str, str], underscores: bool,
        add: Mapping[str, str] | None, remove: Iterable[str], preserve_host: bool, host: str,
    ) -> TrackHeaders:  # fmt: skip
        replaced = [*set_headers, *remove]
        own = _shared(frozenset(name.lower().encode("latin-1") for name in replaced) - PROXY_OWNED)
        lines = [TRACK_HEADER + b": " + track.encode("ascii") + b"\r\n"] if track is not None else []
        lines += [f"{k}: {v}\r\n".encode() for k, v in set_headers.items()]
        lines += [f"{k}: {v}\r\n".encode() for k, v in (add or {}).items()]
        return cls(drop=PROXY_OWNED, extra=b"".join(lines), underscores=underscores,
                   preserve_host=preserve_host, own=own, host=host.encode("ascii"))  # fmt: skip

    def refuses_underscored(self, lower: bytes, named: set[bytes] | frozenset[bytes] = frozenset()) -> bool:
        """Whether a lower-case client header name containing ``_`` is left out."""
        if not self.underscores:
            return True
        folded = lower.replace(b"_", b"-")
        return folded in self.drop or folded in self.own or folded in named


def connection_tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


@dataclass(frozen=True, slots=True)
class Forwarding:
    """Facts about the client connection the forwarded head carries."""

    peer: bytes  # TCP peer address
    client_ip: bytes  # resolved through trusted proxies
    trusted_peer: bool
    scheme: bytes  # b"http" or b"https" (the listener's)
    client: IPAddress | str  # the client IP parsed once per distinct address (routing uses this)
    client_key: IpKey | None  # ``graylane.routing.request.ip_key(client)``, also once per address


def build_request_head(
    *,
    method: bytes,
    target: bytes,
    authority: bytes,
    raw_headers: RawHeaders,
    plan: TrackHeaders,
    fwd: Forwarding,
    framing: bytes,
    client_host: bytes = b"",
) -> bytes:
    """The request line and headers for the upstream, ending with the blank line.

    ``framing`` is b"" (no body), b"Content-Length: N\\r\\n" or b"Transfer-Encoding: chunked\\r\\n";
    ``client_host`` an absolute-form target's authority, which wins over the client's ``Host``.
    """
    drop, own = plan.drop, plan.own
    parts = [method, b" ", target, b" HTTP/1.1\r\nHost: ", authority, b"\r\n"]
    owned: dict[bytes, list[bytes]] = {}
    for name, value in raw_headers:
        lower = name.lower()
        if lower in drop or lower in own:
            owned.setdefault(lower, []).append(value)
            continue
        if b"_" in lower and plan.refuses_underscored(lower):
            continue
        parts += (name, b": ", value, b"\r\n")
    connection = owned.get(b"connection")
    if connection is not None:  # rare: rebuild without the headers the client's Connection named
        named = set().union(*map(connection_tokens, connection))
        del parts[6:]
        for name, value in raw_headers:
            lower = name.lower()
            if lower in drop or lower in own or lower in named:
                continue
            if b"_" in lower and plan.refuses_underscored(lower, named):
                continue
            parts += (name, b": ", value, b"\r\n")
    if plan.host:
        parts[4] = plan.host
    elif plan.preserve_host:  # the client's authority, as it asked (absolute-form wins over Host)
        parts[4] = client_host or owned.get(b"host", [authority])[0]
    trusted = fwd.trusted_peer
    proto = owned.get(b"x-forwarded-proto", [b""])[0] if trusted else b""
    hosts = (
        (owned.get(b"x-forwarded-host") if trusted else None)
        or ([client_host] if client_host else None)
        or owned.get(b"host")
        or [b""]
    )
    _proxy_headers(parts, fwd, owned.get(b"x-forwarded-for", []), proto, hosts[0])
    forwarded = owned.get(b"forwarded")
    if forwarded:  # RFC 7239: the client's element(s), then this hop's
        forwarded.append(b'for="[%b]"' % fwd.peer if b":" in fwd.peer else b"for=" + fwd.peer)
        parts += (b"Forwarded: ", b", ".join(forwarded), b"\r\n")
    parts += (plan.extra, framing, b"\r\n")
    return b"".join(parts)


def _proxy_headers(parts: list[bytes], fwd: Forwarding, xff: list[bytes], proto: bytes, host: bytes) -> None:
    """X-Forwarded-For (the chain + the peer), -Proto, -Host and X-Real-IP."""
    xff.append(fwd.peer)
    parts += (b"X-Forwarded-For: ", b", ".join(xff), b"\r\nX-Forwarded-Proto: ", proto or fwd.scheme, b"\r\n")
    if host:
        parts += (b"X-Forwarded-Host: ", host, b"\r\n")
    parts += (b"X-Real-IP: ", fwd.client_ip, b"\r\n")


MAX_RESPONSE_HEAD = 64 * 1024  # header bytes of one response (1xx included); more is a protocol error


class UpstreamHead:
    """An upstream response's headers as the client will get them, sorted once as they arrive.

    ``lines`` are the client-bound ``Name: value\\r\\n`` lines in order; hop-by-hop and framing headers go
    to :meth:`drop` instead (which notes the upstream's length, whether the body is framed, and the
    names a ``Connection`` header lists, whose lines are then left out as well).
    """

    __slots__ = ("framed", "length", "lines", "named", "size")

    def __init__(self, size: int = 0) -> None:
        self.lines: list[bytes] = []
        self.length = b""  # the upstream's Content-Length value, if any
        self.framed = False  # Content-Length or Transfer-Encoding: the body does not end at close
        self.named: set[bytes] | None = None
        self.size = size  # header bytes so far, of this head and the 1xx heads before it

    def received(self, name: bytes, value: bytes | None) -> None:
        """One header as httptools delivers it: counted against :data:`MAX_RESPONSE_HEAD`, then sorted."""
        value = value or b""
        self.size += len(name) + len(value)
        if self.size > MAX_RESPONSE_HEAD:
            raise ValueError("response head too large")  # httptools turns it into a parser error: protocol
        self.add(name, value)

    def after_informational(self) -> UpstreamHead:
        """A 1xx head ends: dropped, and a new head begins for the answer (the bytes keep counting)."""
        return UpstreamHead(self.size)

    def add(self, name: bytes, value: bytes) -> None:
        """Sort one upstream header as it arrives: a client-bound line, or hop-by-hop / framing."""
        if len(name) in _DROP_LENGTHS and (lower := name.lower()) in RESPONSE_DROP:
            self.drop(lower, value)
        else:
            self.lines.append(name + b": " + value + b"\r\n")

    def drop(self, lower: bytes, value: bytes) -> None:
        if lower == b"content-length":
            self.length, self.framed = value.strip(), True
        elif lower == b"transfer-encoding":
            self.framed = True
        elif lower == b"connection" and value.strip().lower() not in _PLAIN_CONNECTION:
            self.named = (self.named or set()) | connection_tokens(value)

    def kept(self) -> list[bytes]:
        """The client-bound lines (without those a ``Connection`` header named)."""
        named = self.named
        if named is None:
            return self.lines
        return [line for line in self.lines if line.partition(b":")[0].lower() not in named]


def response_headers(head: UpstreamHead) -> tuple[list[tuple[str, str]], int | None]:
    """Client-bound headers (hop-by-hop and framing removed) and the upstream's Content-Length, if any."""
    pairs = []
    for line in head.kept():
        name, _, value = line[:-2].partition(b": ")
        pairs.append((name.decode("latin-1"), value.decode("utf-8", "replace")))
    return pairs, response_length(head)


def response_length(head: UpstreamHead) -> int | None:
    return int(head.length) if head.length.isdigit() else None


def response_head(
    *, minor: int, status: int, head: UpstreamHead, length: int | None, keep_alive: bool
) -> bytes:
    """A complete client response head (status line, filtered upstream headers, framing, connection)."""
    parts = [_STATUS_LINES[minor].get(status) or b"HTTP/1.%d %d \r\n" % (minor, status)]
    parts += head.lines if head.named is None else head.kept()
    if length is not None:
        parts.append(b"Content-Length: %d\r\n" % length)
    elif head.length:  # HEAD, 204, 304: the upstream's length describes a body that is not sent
        parts += (b"Content-Length: ", head.length, b"\r\n")
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    elif minor == 0:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


_STATUS_LINES = {
    minor: {
        int(code): b"HTTP/1.%d %d %s\r\n" % (minor, int(code), code.phrase.encode("ascii"))
        for code in HTTPStatus
    }
    for minor in (0, 1)
}
