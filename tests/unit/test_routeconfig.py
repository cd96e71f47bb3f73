"""The route document loader: valid documents load, the model round-trips, problems carry field paths."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graylane.config.document import (
    ConfigError,
    canonical_json,
    document_checksum,
    load_route_document,
    seal,
)
from graylane.routing import sticky
from tests.unit.docs import base_document, sealed_document
from tests.unit.routedump import to_document

# --- basics ---------------------------------------------------------------------------------------


def test_example_document_loads_from_str_bytes_and_mapping() -> None:
    doc = sealed_document()
    for raw in (canonical_json(doc), canonical_json(doc).encode(), doc):
        config = load_route_document(raw)
        assert config.key == "shop/checkout"
        assert config.weight == 5.0 and sticky.threshold(config.weight) == 500
        assert config.upstreams["checkout-v1"].host == "checkout-v1.shop.svc"
        assert config.upstreams["checkout-v1"].port == 8080
        assert config.rules[0].match.headers[0].name == "X-Canary"
        assert config.request_headers["canary"].set == {"X-Feature-New-Checkout": "on"}


def test_canonical_json_is_sorted_compact_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'


def test_checksum_ignores_the_checksum_key_and_seal_is_idempotent() -> None:
    doc = base_document()
    sealed = seal(doc)
    assert sealed["checksum"] == document_checksum(doc) == document_checksum(sealed)
    assert seal(sealed) == sealed
    assert "checksum" not in doc, "seal returns a copy"


def test_every_problem_is_reported_at_once() -> None:
    doc = base_document(weight=150, stable="nope", salt="")
    doc["rules"][0]["match"]["headers"][0]["regex"] = "(a)\\1"
    with pytest.raises(ConfigError) as caught:
        load_route_document(seal(doc))
    paths = {e.path for e in caught.value.errors}
    assert {"weight", "stable", "salt", "rules[0].match.headers[0]"} <= paths
    assert caught.value.reason == "invalid"


def test_checksum_mismatch_has_its_own_reason() -> None:
    doc = sealed_document()
    doc["weight"] = 50
    with pytest.raises(ConfigError) as caught:
        load_route_document(doc)
    assert [e.path for e in caught.value.errors] == ["checksum"]
    assert caught.value.reason == "checksum"


def test_optional_sections_default() -> None:
    doc = base_document()
    for key in ("rules", "versionRouting", "sticky", "jwt", "requestHeaders"):
        del doc[key]
    del doc["upstreams"]["checkout-v1"]["timeoutSeconds"]
    config = load_route_document(seal(doc))
    assert config.rules == () and config.sticky is None and config.jwt is None
    assert config.upstreams["checkout-v1"].timeout_seconds == 30


def test_upstream_url_parts() -> None:
    doc = base_document()
    doc["upstreams"]["checkout-v2"]["url"] = "https://[2001:db8::1]/base/"
    up = load_route_document(seal(doc)).upstreams["checkout-v2"]
    assert (up.scheme, up.host, up.port, up.base_path) == ("https", "2001:db8::1", 443, "/base")


def test_wildcard_and_ip_hosts_are_valid() -> None:
    config = load_route_document(seal(base_document(hosts=["*.example.com", "127.0.0.1", "[::1]"])))
    assert config.hosts == ("*.example.com", "127.0.0.1", "[::1]")


def test_weight_with_two_decimals() -> None:
    assert sticky.threshold(load_route_document(seal(base_document(weight=12.34))).weight) == 1234


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"schemaVersion":' + b"9" * 1_000_000 + b"}", "integer too long"),
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper"),
        (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', "schemaVersion: required field is missing"),
    ],
    ids=["million-digit-integer", "deep-lists", "deep-objects", "brackets-inside-strings-are-fine"],
)
def test_hostile_json_is_rejected_cleanly(raw: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_route_document(raw)
    assert message in str(caught.value)


def test_generated_huge_whitespace_is_rejected_by_size() -> None:
    with pytest.raises(ConfigError) as caught:
        load_route_document(b" " * (1024 * 1024 + 1))
    assert caught.value.errors[0].path == ""


# --- round trip (hypothesis) ----------------------------------------------------------------------

NAME = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_./é ", min_size=1, max_size=12)
REGEXES = st.sampled_from(["v[0-9]+", "(?i)beta.*", "[a-z]{2,4}", "a|b|c", ".*"])


@st.composite
def string_matchers(draw: Any, name_key: str | None, names: Any) -> dict[str, Any]:
    op = draw(st.sampled_from(["exact", "prefix", "suffix", "regex", "present", "in"]))
    m: dict[str, Any] = {name_key: draw(names)} if name_key else {}
    if op == "regex":
        m["regex"] = draw(REGEXES)
    elif op == "present":
        m["present"] = True
    elif op == "in":
        m["in"] = draw(st.lists(TEXT, min_size=1, max_size=3, unique=True))
    else:
        m[op] = draw(TEXT)
    if draw(st.booleans()):
        m["invert"] = True
    return m


HEADER = st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True)


@st.composite
def matches(draw: Any, jwt: bool) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "headers": st.lists(string_matchers("name", HEADER), min_size=1, max_size=3),
        "query": st.lists(string_matchers("name", NAME), min_size=1, max_size=2),
        "cookies": st.lists(string_matchers("name", NAME), min_size=1, max_size=2),
        "sourceCIDRs": st.lists(
            st.sampled_from(["10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        "sourceCountries": st.lists(
            st.sampled_from(["GB", "DE", "US", "FR"]), min_size=1, max_size=3, unique=True
        ),
        "methods": st.lists(st.sampled_from(["GET", "POST", "PUT"]), min_size=1, max_size=3, unique=True),
        "path": string_matchers(None, NAME),
    }
    if jwt:
        parts["jwtClaims"] = st.lists(string_matchers("claim", NAME), min_size=1, max_size=2)
    keys = draw(st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=4, unique=True))
    return {k: draw(parts[k]) for k in keys}


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    upstreams = {
        n: {
            "url": f"http://{n}.shop.svc:{draw(st.integers(1, 65535))}",
            "metadata": {"version": f"v{i}"},
            "timeoutSeconds": draw(st.sampled_from([1, 30, 2.5])),
            "maxConnections": draw(st.integers(1, 1000)),
        }
        for i, n in enumerate(names)
    }
    has_jwt = draw(st.booleans())
    rule_names = draw(st.lists(NAME, max_size=4, unique=True))
    bp = draw(st.integers(0, 10_000))
    doc = base_document(
        hosts=draw(st.lists(st.sampled_from(["a.example.com", "*.b.example.com", "10.0.0.1"]), unique=True)),
        pathPrefix=draw(st.sampled_from(["/", "/api", "/api/v1/"])),
        upstreams=upstreams,
        stable=draw(st.sampled_from(names)),
        canary=draw(st.sampled_from(names)),
        rules=[
            {"name": n, "to": draw(st.sampled_from(["stable", "canary"])), "match": draw(matches(has_jwt))}
            for n in rule_names
        ],
        versionRouting=draw(
            st.none() | st.just({"header": "X-Version", "metadataKey": "version", "candidates": names})
        ),
        weight=bp // 100 if bp % 100 == 0 else bp / 100,
        sticky=draw(
            st.none()
            | st.just({"keys": ["jwt:sub", "header:X-User-Id", "sourceIP"] if has_jwt else ["cookie:s"]})
        ),
        jwt={
            "issuer": "https://auth.example.com",
            "audiences": ["shop"],
            "algorithms": ["RS256", "ES256"],
            "leewaySeconds": 30,
            "publicKeys": [],
            "jwksURL": "https://auth.example.com/jwks",
            "secretRef": None,
        }
        if has_jwt
        else None,
        requestHeaders=draw(
            st.sampled_from([{}, {"canary": {"set": {"X-Flag": "on"}}, "stable": {"set": {}}}])
        ),
    )
    return seal(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_round_trip_document_canonical_json_load_same(doc: dict[str, Any]) -> None:
    text = canonical_json(doc)
    config = load_route_document(text)
    assert to_document(config) == doc
    assert json.loads(text) == dict(config.document)
    assert load_route_document(canonical_json(to_document(config))) == config


def test_mapping_input_must_be_plain_json_and_is_detached() -> None:
    doc = sealed_document()
    config = load_route_document(doc)
    doc["upstreams"]["checkout-v1"]["url"] = "http://changed"
    assert config.document["upstreams"]["checkout-v1"]["url"] == "http://checkout-v1.shop.svc:8080"
    bad = sealed_document()
    bad["hosts"] = {"a.example.com"}
    with pytest.raises(ConfigError) as caught:
        load_route_document(bad)
    assert caught.value.errors[0].path == ""
