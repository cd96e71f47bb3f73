"""Country lookup: bundled iptocc data, an injected MaxMind reader, the CDN header from trusted peers only.

Opening a real ``.mmdb`` file is the proxy's (tests/proxy/test_geofile.py)."""

from __future__ import annotations

import pytest

from graylane.config.document import load_route_document, seal
from graylane.routing.decide import RouteTable, decide
from graylane.routing.geo import CountryResolver, IptoccLookup, MmdbLookup, country_of_record
from tests.unit.docs import base_document
from tests.unit.views import view


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("81.2.69.160", "GB"),  # a UK allocation (also MaxMind's test address)
        ("8.8.8.8", "US"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:81.2.69.160", "GB"),
        ("10.0.0.1", None),
        ("127.0.0.1", None),
        ("garbage", None),
    ],
)
def test_iptocc(ip: str, country: str | None) -> None:
    assert IptoccLookup().country(ip) == country


def test_mmdb_reader_is_injected() -> None:
    class Reader:
        def get(self, ip: str) -> object:
            return {"country": {"iso_code": "SE"}} if ip == "1.1.1.1" else None

    assert MmdbLookup(Reader()).country("1.1.1.1") == "SE"
    assert MmdbLookup(Reader()).country("1.1.1.2") is None


@pytest.mark.parametrize(
    ("record", "country"),
    [
        ({"country": {"iso_code": "GB"}}, "GB"),
        ({"country": {"iso_code": "gb"}}, None),
        ({"country_code": "JP"}, "JP"),
        ({"country": {"iso_code": "XX"}}, None),
        ([], None),
        (None, None),
    ],
)
def test_country_of_record(record: object, country: str | None) -> None:
    assert country_of_record(record) == country


# --- CDN header -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trusted", "header", "expected"),
    [
        (True, "DE", "DE"),
        (True, "de", "DE"),
        (True, "XX", None),  # Cloudflare: unknown
        (True, "T1", None),  # Cloudflare: Tor -- not a country
        (True, None, "GB"),  # header absent: fall back to the IP lookup
        (False, "DE", "GB"),  # untrusted peer: the header is ignored
    ],
)
def test_cdn_country_header_only_from_trusted_peer(
    trusted: bool, header: str | None, expected: str | None
) -> None:
    resolver = CountryResolver(IptoccLookup(), header="CF-IPCountry")
    headers = {"cf-ipcountry": header} if header is not None else {}
    assert (
        resolver.country_of(view(headers=headers, client_ip="81.2.69.160", trusted_peer=trusted)) == expected
    )


def test_source_countries_rule_end_to_end() -> None:
    doc = base_document(
        rules=[{"name": "uk-first", "to": "canary", "match": {"sourceCountries": ["GB"]}}], weight=0
    )
    table = RouteTable.build([load_route_document(seal(doc))], countries=IptoccLookup())
    uk = decide(table, view(client_ip="81.2.69.160"), 0.5)
    us = decide(table, view(client_ip="8.8.8.8"), 0.5)
    assert uk is not None and us is not None
    assert (uk.track, uk.reason) == ("canary", "rule:uk-first")
    assert (us.track, us.reason) == ("stable", "stable")
