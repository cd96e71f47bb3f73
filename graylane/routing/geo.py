"""Client IP -> ISO 3166-1 alpha-2 country, offline, for ``sourceCountries`` rules.

Three sources, all behind the :class:`CountryLookup` protocol (``country(ip) -> "GB" | None``):
- :class:`IptoccLookup` (default): RIR allocation data bundled in the ``iptocc`` package (~100 ns a lookup).
  It answers the *registration* country of the block, good for "roll out to one country first".
- :class:`MmdbLookup`: a MaxMind-format database (GeoLite2-Country/City, DB-IP, IPinfo) over an already
  open ``maxminddb`` reader; this module does no I/O -- the proxy's
  :func:`graylane.proxy.sources.geofile.open_mmdb` opens the file.
- :class:`CountryResolver` adds the CDN country header (``CF-IPCountry``, ``CloudFront-Viewer-Country``):
  honoured only when the TCP peer is a trusted proxy (``RequestView.trusted_peer``); ``XX`` means unknown.
Answers are upper-case two-letter codes; anything else from a source is treated as unknown (None).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

import iptocc

from graylane.routing.request import RequestView

_CODE = re.compile(r"[A-Z]{2}")
UNKNOWN_CODES = frozenset({"XX", "ZZ"})


class CountryLookup(Protocol):
    def country(self, ip: str) -> str | None: ...


def _code(value: Any) -> str | None:
    if isinstance(value, str) and _CODE.fullmatch(value) and value not in UNKNOWN_CODES:
        return value
    return None


def _unmap(ip: str) -> str:
    """``::ffff:1.2.3.4`` -> ``1.2.3.4`` (cheap check first; the resolver usually did this already)."""
    if ip.startswith(("::ffff:", "::FFFF:")) and "." in ip:
        return ip[7:]
    return ip


class IptoccLookup:
    """Country from the ``iptocc`` package's bundled RIR data."""

    def country(self, ip: str) -> str | None:
        try:
            return _code(iptocc.country_code(_unmap(ip)))
        except (ValueError, TypeError):
            return None


class MmdbReader(Protocol):
    def get(self, ip_address: str, /) -> Any: ...


class MmdbLookup:
    """Country from a MaxMind-format database (any reader with ``get(ip) -> record``)."""

    def __init__(self, reader: MmdbReader) -> None:
        self.reader = reader

    def country(self, ip: str) -> str | None:
        try:
            record = self.reader.get(_unmap(ip))
        except (ValueError, TypeError):
            return None
        return country_of_record(record)


def country_of_record(record: Any) -> str | None:
    """GeoLite2/DB-IP ``{"country": {"iso_code": "GB"}}``; IPinfo ``{"country": "GB"}``/``country_code``."""
    if not isinstance(record, Mapping):
        return None
    for field in ("country", "registered_country"):
        value = record.get(field)
        if isinstance(value, Mapping):
            value = value.get("iso_code")
        code = _code(value)
        if code is not None:
            return code
    return _code(record.get("country_code"))


class CountryResolver:
    """The country of one request: the CDN header from a trusted peer if configured, else the IP lookup."""

    def __init__(self, lookup: CountryLookup | None, *, header: str | None = None) -> None:
        self.lookup = lookup
        self.header = header.lower() if header else None

    def country_of(self, view: RequestView) -> str | None:
        if self.header is not None and view.trusted_peer:
            value = view.headers.get(self.header)
            if value is not None:
                return _code(value.strip().upper())
        ip = view.client_ip_text()
        if ip is None or self.lookup is None:
            return None
        return self.lookup.country(ip)
