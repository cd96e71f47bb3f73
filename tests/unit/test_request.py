"""RequestView helpers: host normalisation, query and cookie parsing, lazy caching."""

from __future__ import annotations

import pytest

from graylane.routing.request import Headers, RequestView, ip_key, normalize_host, parse_cookies, parse_query


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("Checkout.Example.com", "checkout.example.com"),
        ("checkout.example.com:8080", "checkout.example.com"),
        ("checkout.example.com.", "checkout.example.com"),
        ("[::1]:8080", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_host(raw: str | None, host: str) -> None:
    assert normalize_host(raw) == host


def test_parse_query_limits_fields() -> None:
    query = "&".join(f"k{i}=v" for i in range(10_000))
    assert len(parse_query(query)) == 256


def test_parse_query_bad_percent_is_kept_safely() -> None:
    assert parse_query("a=%zz&b=%ff") == {"a": "%zz", "b": "\udcff"}


def test_parse_cookies_multiple_headers_first_wins() -> None:
    assert parse_cookies(["a=1; b=2", "a=3; c=4"]) == {"a": "1", "b": "2", "c": "4"}


def test_headers_fallback_is_case_insensitive() -> None:
    h = Headers([("X-A", "1"), ("x-a", "2")])
    assert h["x-A"] == "1" and h.get("X-A") == "1" and h.getall("x-a") == ["1", "2"] and len(h) == 1


def test_view_parses_lazily_and_once() -> None:
    headers = Headers({"Cookie": "a=1"})
    v = RequestView(
        method="GET", host="h", path="/", headers=headers, client_ip="::ffff:1.2.3.4", query_string="q=1"
    )
    assert v.query() is v.query() and v.query() == {"q": "1"}
    assert v.cookies() is v.cookies() and v.cookies() == {"a": "1"}
    assert v.ip_key() == (4, 0x01020304)
    assert v.claims() is None


@pytest.mark.parametrize(
    "ip",
    [
        "bad",
        "",
        None,
        "1.2.3.4%eth0",
        "010.0.0.1",
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4.5",
        "\u0661.2.3.4",
        "1.2.3.4 ",
    ],
)
def test_ip_key_of_bad_input(ip: str | None) -> None:
    assert ip_key(ip) is None


@pytest.mark.parametrize(
    ("ip", "key"), [("0.0.0.0", (4, 0)), ("255.255.255.255", (4, 2**32 - 1)), ("::1", (6, 1))]
)
def test_ip_key(ip: str, key: tuple[int, int]) -> None:
    assert ip_key(ip) == key
