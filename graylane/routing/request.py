"""``RequestView``: what a routing decision may look at, built cheaply by the proxy for every request.

Everything that costs something (query parameters, cookies, the client IP as an integer, the country, the
verified JWT claims) is computed on first use and cached on the view, so a route whose rules never look at
cookies never parses them. Headers are any mapping whose ``.get`` is case-insensitive for lower-case names
(aiohttp's ``CIMultiDictProxy``); :class:`Headers` is a small stand-in for tests and the CLI.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import unquote_plus

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(r"\.".join([_OCTET] * 4), re.ASCII)
MAX_QUERY_FIELDS = 256
MAX_COOKIES = 256
_UNSET: Any = object()

ClaimsSource = Callable[[], Mapping[str, Any] | None]
IpKey = tuple[int, int]  # (4 or 6, integer value); IPv4-mapped IPv6 becomes 4


class HeaderLookup(Protocol):
    def get(self, key: str, /) -> str | None: ...


class CountrySource(Protocol):
    def country_of(self, view: RequestView) -> str | None: ...


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive header mapping (first value wins); ``getall`` returns every value."""

    __slots__ = ("_all", "_first")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._all: dict[str, list[str]] = {}
        for name, value in pairs:
            self._all.setdefault(name.lower(), []).append(value)
        self._first = {k: v[0] for k, v in self._all.items()}

    def __getitem__(self, key: str) -> str:
        return self._first[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._first.get(key.lower(), default)

    def getall(self, key: str, default: Any = ()) -> Any:
        return self._all.get(key.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)


def ip_key(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> IpKey | None:
    """``(version, int)`` for an address; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) counts as IPv4."""
    if ip is None:
        return None
    if isinstance(ip, str) and "." in ip and ":" not in ip:
        value = _dotted_quad(ip)
        return None if value is None else (4, value)
    try:
        addr = ip if not isinstance(ip, str) else ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return 4, int(mapped)
        return 6, int(addr)
    return 4, int(addr)


def _dotted_quad(text: str) -> int | None:
    """Strict a.b.c.d -> int (no leading zeros, ASCII digits only), without ipaddress' cost."""
    m = _DOTTED_QUAD.fullmatch(text)
    if m is None:
        return None
    return int.from_bytes(bytes(map(int, m.groups())), "big")


def normalize_host(host_header: str | None) -> str:
    """Host header -> lower-case host without port or trailing dot (``[::1]:8080`` -> ``[::1]``)."""
    if not host_header:
        return ""
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    colon = host.rfind(":")
    if colon >= 0:
        host = host[:colon]
    return host.rstrip(".")


def parse_query(query_string: str) -> dict[str, str]:
    """``a=1&b=2`` -> dict, first value of a repeated key wins, ``+`` is a space, keys are percent-decoded."""
    out: dict[str, str] = {}
    if not query_string:
        return out
    for field in query_string.split("&", MAX_QUERY_FIELDS)[:MAX_QUERY_FIELDS]:
        if not field:
            continue
        name, _, value = field.partition("=")
        key = unquote_plus(name, errors="surrogateescape")
        if key not in out:
            out[key] = unquote_plus(value, errors="surrogateescape")
    return out


def parse_cookies(headers: Iterable[str]) -> dict[str, str]:
    """Cookie header values -> dict, first occurrence wins, surrounding double quotes removed."""
    out: dict[str, str] = {}
    for header in headers:
        for part in header.split(";", MAX_COOKIES)[:MAX_COOKIES]:
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name or name in out:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out[name] = value
    return out


class RequestView:
    """One request as the router sees it. Build with keyword arguments; never mutated by the core."""

    __slots__ = (
        "_claims",
        "_claims_source",
        "_cookies",
        "_country",
        "_ip_key",
        "_query",
        "client_ip",
        "headers",
        "host",
        "method",
        "path",
        "query_string",
        "trusted_peer",
    )

    def __init__(
        self,
        *,
        method: str,
        host: str,
        path: str,
        headers: HeaderLookup | Mapping[str, str],
        client_ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None,
        query_string: str = "",
        claims: ClaimsSource | None = None,
        trusted_peer: bool = False,
        client_key: IpKey | Any | None = _UNSET,
    ) -> None:
        self.method = method
        self.host = host
        self.path = path
        self.query_string = query_string
        self.headers: Any = headers
        self.client_ip = client_ip
        self.trusted_peer = trusted_peer  # the TCP peer is a trusted proxy (CDN country header honoured)
        self._claims_source = claims
        self._claims: Any = _UNSET
        self._query: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None
        self._ip_key: Any = client_key  # ``ip_key(client_ip)`` when the caller has it already
        self._country: Any = _UNSET

    def bind_claims(self, source: ClaimsSource | None) -> None:
        """Set where verified claims come from (the route's verifier is known once its entry is found)."""
        self._claims_source = source
        self._claims = _UNSET

    def claims(self) -> Mapping[str, Any] | None:
        """Verified JWT claims (None: no token or it failed verification); asked once, then cached."""
        claims = self._claims
        if claims is _UNSET:
            source = self._claims_source
            claims = self._claims = source() if source is not None else None
        return claims  # type: ignore[no-any-return]

    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = parse_query(self.query_string)
        return self._query

    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            getall = getattr(self.headers, "getall", None)
            if getall is not None:
                values = getall("cookie", ())
            else:
                one = self.headers.get("cookie")
                values = (one,) if one is not None else ()
            self._cookies = parse_cookies(values)
        return self._cookies

    def ip_key(self) -> IpKey | None:
        key = self._ip_key
        if key is _UNSET:
            key = self._ip_key = ip_key(self.client_ip)
        return key  # type: ignore[no-any-return]

    def client_ip_text(self) -> str | None:
        return None if self.client_ip is None else str(self.client_ip)

    def country(self, source: CountrySource) -> str | None:
        code = self._country
        if code is _UNSET:
            code = self._country = source.country_of(self)
        return code  # type: ignore[no-any-return]
