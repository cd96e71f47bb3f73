"""A MaxMind-format ``.mmdb`` file opened by the proxy (``--geoip-db``) answers the core's country lookups."""

from __future__ import annotations

from pathlib import Path

import pytest
from graylane.proxy.sources.geofile import open_mmdb

from tests.unit.mmdbwrite import write_ipv4_db


@pytest.fixture
def mmdb_path(tmp_path: Path) -> Path:
    path = tmp_path / "country.mmdb"
    path.write_bytes(
        write_ipv4_db(
            {
                "81.2.69.0/24": {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}},
                "203.0.113.0/24": {"country": {"iso_code": "DE"}},
                "198.51.100.0/25": {"registered_country": {"iso_code": "FR"}},
                "192.0.2.0/24": {"country": "NL"},  # IPinfo-style flat record
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("81.2.69.160", "GB"),
        ("203.0.113.255", "DE"),
        ("198.51.100.1", "FR"),
        ("198.51.100.200", None),
        ("192.0.2.9", "NL"),
        ("8.8.8.8", None),
        ("::ffff:81.2.69.1", "GB"),
        ("2001:db8::1", None),  # an IPv6 address against an IPv4-only database
        ("nonsense", None),
    ],
)
def test_mmdb(mmdb_path: Path, ip: str, country: str | None) -> None:
    assert open_mmdb(mmdb_path).country(ip) == country
