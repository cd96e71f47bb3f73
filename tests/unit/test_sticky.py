"""The sticky split: a documented, stable hash; monotone in the weight; canary share == weight."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.routing import sticky
from tests.unit.views import view

# Fixed vectors: xxh3_64(salt + "\x00" + key) (seed 0) and its bucket. If these change, every user of
# every running route would switch versions on upgrade -- a compatibility promise, not a detail.
VECTORS = [
    ("shop/checkout", "u-1001", 12494062651421809519, 9519),
    ("shop/checkout", "u-1002", 13451005535219271091, 1091),
    ("a/b", "", 7523118268712261650, 1650),
    ("shop/checkout", "é-ü", 12028780498051448305, 8305),
    ("x", "203.0.113.7", 17597905786657829203, 9203),
]


@pytest.mark.parametrize(("salt", "key", "digest", "bucket"), VECTORS)
def test_hash_vectors_are_fixed(salt: str, key: str, digest: int, bucket: int) -> None:
    assert digest % sticky.BUCKETS == bucket
    assert sticky.bucket(salt, key) == bucket
    assert sticky.bucket_with_prefix(sticky.salt_prefix(salt), key) == bucket


def test_same_answer_in_another_process_with_another_hash_seed() -> None:
    code = "from graylane.routing.sticky import bucket; print([bucket(s, k) for s, k in %r])" % [
        v[:2] for v in VECTORS
    ]
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str([v[3] for v in VECTORS])


def test_threshold_is_the_first_stable_bucket() -> None:
    assert sticky.threshold(0) == 0 and sticky.threshold(100) == 10_000 and sticky.threshold(5.25) == 525
    assert sticky.threshold(5.25) > 524 and not sticky.threshold(5.25) > 525
    assert not sticky.threshold(0) > 0 and sticky.threshold(100) > 9_999


def test_odd_strings_hash_without_error() -> None:
    assert 0 <= sticky.bucket("s", "\udcff lone surrogate") < sticky.BUCKETS


@settings(max_examples=300)
@given(
    salt=st.text(max_size=20),
    key=st.text(min_size=1, max_size=40),
    w1=st.integers(0, 10_000),
    w2=st.integers(0, 10_000),
)
def test_monotone_raising_the_weight_never_moves_canary_to_stable(
    salt: str, key: str, w1: int, w2: int
) -> None:
    low, high = sorted((w1 / 100, w2 / 100))
    b = sticky.bucket(salt, key)
    assert (b < sticky.threshold(low)) <= (b < sticky.threshold(high))


@pytest.mark.parametrize("weight", [1, 5, 12.5, 50, 90])
def test_canary_share_is_within_tolerance(weight: float) -> None:
    n = 20_000
    hits = sum(sticky.bucket("shop/checkout", f"user-{i}") < sticky.threshold(weight) for i in range(n))
    expected = n * weight / 100
    sd = (n * (weight / 100) * (1 - weight / 100)) ** 0.5
    assert abs(hits - expected) < 5 * sd + 1


def test_buckets_differ_between_salts() -> None:
    same = sum(sticky.bucket("a/one", f"u{i}") == sticky.bucket("a/two", f"u{i}") for i in range(2000))
    assert same < 20  # independent routes split users independently


# --- sticky keys: first present wins --------------------------------------------------------------
KEYS = sticky.compile_keys(["jwt:sub", "header:X-User-Id", "cookie:session", "query:uid", "sourceIP"])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"claims": {"sub": "u-1"}, "headers": {"X-User-Id": "h"}}, ("jwt:sub", "u-1")),
        ({"claims": {"sub": 42}}, ("jwt:sub", "42")),
        ({"claims": {"other": "x"}, "headers": {"x-user-id": "h"}}, ("header:X-User-Id", "h")),
        ({"headers": {"X-User-Id": "", "Cookie": "session=c"}}, ("cookie:session", "c")),
        ({"query": "uid=q"}, ("query:uid", "q")),
        ({}, ("sourceIP", "198.51.100.7")),
        ({"client_ip": None}, (None, None)),
    ],
    ids=["jwt", "jwt-int", "header-when-claim-missing", "empty-header-skipped", "query", "source-ip", "none"],
)
def test_first_present_key(kwargs: dict[str, object], expected: tuple[str | None, str | None]) -> None:
    assert sticky.first_key(KEYS, view(**kwargs)) == expected  # type: ignore[arg-type]


def test_unknown_key_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sticky key"):
        sticky.key_extractor("body:x")
