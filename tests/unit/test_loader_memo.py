"""The loader's memo of validated blocks changes nothing but the cost.

A document loads to the same model whether its blocks were seen before or not (the memo cleared or warm);
blocks that validated are shared between documents; an invalid block is never remembered, so its errors carry
the paths of the document at hand, however often it repeats.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from graylane.config.document import ConfigError, canonical_json, load_route_document, seal
from graylane.config.memo import BLOCKS
from tests.unit.docs import base_document

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
