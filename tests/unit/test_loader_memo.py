"""The loader's memo of validated blocks and its shortcuts change nothing but the cost.

A document loads to the same model whether its blocks were seen before or not (the memo cleared or warm);
blocks that validated are shared between documents; an invalid block is never remembered, so its errors carry
the paths of the document at hand, however often it repeats. The checksum of canonical text is proven on
its bytes, and the plain-URL shortcut splits an upstream URL exactly as ``urlsplit`` does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graylane.config import loader, upstreamblock
from graylane.config.document import ConfigError, canonical_json, load_route_document, seal
from graylane.config.fields import FieldChecker
from graylane.config.memo import BLOCKS
from tests.unit.docs import base_document, http_document

from .test_routeconfig import documents


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_a_document_loads_the_same_with_a_cold_or_warm_memo(doc: dict[str, Any]) -> None:
    text = canonical_json(doc)
    BLOCKS.clear()
    cold = load_route_document(text)
    warm = load_route_document(text)
    pretty = load_route_document(json.dumps(doc, indent=1))
    assert cold == warm == pretty
    assert warm.document == cold.document


RULE = {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Qa", "exact": "1"}]}}


def named(name: str, **overrides: Any) -> Any:
    ref = {"namespace": "shop", "name": name, "uid": name, "generation": 1}
    return load_route_document(seal(base_document(route=ref, salt=name, **overrides)))


def test_equal_blocks_of_different_routes_are_one_object() -> None:
    one, two = named("one", rules=[RULE]), named("two", rules=[RULE])
    assert one.rules[0] is two.rules[0]
    assert one.upstreams["checkout-v1"] is two.upstreams["checkout-v1"]
    assert named("three", rules=[{**RULE, "to": "stable"}]).rules[0] is not one.rules[0]


@pytest.mark.parametrize("position", [0, 1])
def test_a_bad_block_reports_its_own_path_every_time(position: int) -> None:
    bad = {"name": "bad", "to": "canary", "match": {"headers": [{"name": "X-A", "regex": "(a"}]}}
    rules = [RULE, bad] if position else [bad, RULE]
    for _ in range(2):  # the second time the good rule is a memo hit; the bad one is validated again
        with pytest.raises(ConfigError) as caught:
            named("broken", rules=rules)
        assert [e.path for e in caught.value.errors] == [f"rules[{position}].match.headers[0].regex"]


def test_a_duplicate_rule_name_is_reported_even_when_the_rule_was_seen() -> None:
    with pytest.raises(ConfigError) as caught:
        named("dup", rules=[RULE, RULE])
    assert [e.path for e in caught.value.errors] == ["rules[1].name"]


def test_the_proxy_can_leave_the_document_out() -> None:
    text = canonical_json(seal(base_document()))
    assert load_route_document(text, keep_document=False) == load_route_document(text)
    assert load_route_document(text, keep_document=False).document == {}
    assert load_route_document(text).document["weight"] == json.loads(text)["weight"]


URLS = [
    "http://a.b.svc:8080", "https://x.example.com", "http://127.0.0.1:9002/base/", "http://h:65535",
    "http://h:65536", "http://h:0", "http://h/a//b", "http://h/a/../b", "http://h/..", "http://h/a.b/c",
    "http://H.example", "https://h:443/x/y/", "http://a-b:80", "http://h:08080", "http://h:8080/%2e%2e",
    "http://user@h", "http://h?q=1", "ftp://h", "http://[::1]:8080/x", "http://h.:80/", "http://h/a/..",
]  # fmt: skip


@pytest.mark.parametrize("url", URLS)
def test_the_plain_url_shortcut_splits_like_urlsplit(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = FieldChecker()
    got = upstreamblock.split_url(fast, url, "u")
    monkeypatch.setattr(upstreamblock, "PLAIN_URL", re.compile("(?!)"))  # never matches: urlsplit only
    slow = FieldChecker()
    assert got == upstreamblock.split_url(slow, url, "u")
    assert [str(e) for e in fast.errors] == [str(e) for e in slow.errors]


PLAIN = r"https?://[a-z0-9][a-z0-9.-]{0,20}(:[0-9]{1,6})?(/[a-z0-9._~-]{0,8}){0,3}"


@given(st.from_regex(PLAIN, fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_generated_plain_urls_split_like_urlsplit(url: str) -> None:
    fast = FieldChecker()
    got = upstreamblock.split_url(fast, url, "u")
    saved, upstreamblock.PLAIN_URL = upstreamblock.PLAIN_URL, re.compile("(?!)")
    try:
        slow = FieldChecker()
        assert got == upstreamblock.split_url(slow, url, "u")
    finally:
        upstreamblock.PLAIN_URL = saved
    assert [str(e) for e in fast.errors] == [str(e) for e in slow.errors]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_the_checksum_of_canonical_text_is_proven_on_its_bytes(doc: dict[str, Any]) -> None:
    """Canonical text passes without being serialised again; the same text with one byte changed fails."""
    text = canonical_json(doc)
    assert load_route_document(text) == load_route_document(doc)
    tampered = text.replace('"salt":"', '"salt":"x', 1)
    with pytest.raises(ConfigError) as caught:
        load_route_document(tampered)
    assert [e.path for e in caught.value.errors] == ["checksum"]


@pytest.mark.parametrize("doc", [base_document(), http_document()], ids=["canary-route", "gateway"])
def test_canonical_text_is_not_serialised_again(doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    text = canonical_json(seal(doc))

    def refuse(_: Any) -> str:
        raise AssertionError("the canonical text was serialised again")

    monkeypatch.setattr(loader, "document_checksum", refuse)
    assert load_route_document(text).checksum == json.loads(text)["checksum"]
    with pytest.raises(AssertionError):  # any other text is checked the long way
        load_route_document(json.dumps(json.loads(text), indent=1))
