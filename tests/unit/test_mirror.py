"""Shadow traffic in the core: the ``mirror`` block of the route document, the mirror decision (sticky, a
bucket independent of the split's, methods, only stable), and the comparison of two answers."""

from __future__ import annotations

from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.compile.route import CompileError, compile_route
from graylane.config.document import ConfigError, MirrorCompare, MirrorSettings, load_route_document, seal
from graylane.config.mirrorblock import mismatch_rate
from graylane.routing import decide
from graylane.routing.mirror import AnswerPrint, MirrorPlan, compare, explain_mirror, header_print, mirrored
from graylane.routing.request import Headers, RequestView
from graylane.routing.sticky import bucket, compile_keys

SALT = "shop/checkout"
UPSTREAMS = {
    n: {"metadata": {"name": n, "namespace": "shop"}, "spec": {"url": f"http://127.0.0.1:{p}"}}
    for n, p in (("v1", 9001), ("v2", 9002))
}


def route(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "checkout", "namespace": "shop", "uid": "u", "generation": 1},
            "spec": {"stable": "v1", "canary": "v2", **spec}}  # fmt: skip


def view(method: str = "GET", **headers: str) -> RequestView:
    return RequestView(method=method, host="h", path="/", query_string="", headers=Headers(headers),
                       client_ip="192.0.2.1", claims=None)  # fmt: skip


def plan(percent: float, **more: Any) -> MirrorPlan:
    return MirrorPlan.compile(MirrorSettings(percent=percent, **more), SALT)


# -- the document --------------------------------------------------------------------------------------


def test_spec_mirror_compiles_with_every_default_spelled_out_and_loads() -> None:
    doc = compile_route(route(mirror={"percent": 12.5}), UPSTREAMS)
    assert doc["mirror"] == {"percent": 12.5, "methods": [], "maxBodyBytes": 65536,
                             "compare": {"body": False, "ignoreHeaders": []}}  # fmt: skip
    config = load_route_document(doc)
    assert config.mirror == MirrorSettings(percent=12.5)


def test_a_rollout_percent_overrides_spec_mirror_and_needs_none() -> None:
    given = {"percent": 5, "methods": ["GET"], "compare": {"body": True, "ignoreHeaders": ["X-Req"]}}
    config = load_route_document(compile_route(route(mirror=given), UPSTREAMS, mirror=100))
    assert config.mirror == MirrorSettings(100, ("GET",), 65536, MirrorCompare(True, frozenset({"x-req"})))
    shadow_only = load_route_document(compile_route(route(), UPSTREAMS, mirror=100))
    assert shadow_only.mirror == MirrorSettings(percent=100)


def test_routes_without_mirror_keep_their_documents_unchanged() -> None:
    doc = compile_route(route(weight=5), UPSTREAMS)
    assert "mirror" not in doc and load_route_document(doc).mirror is None


@pytest.mark.parametrize(
    ("mirror", "path", "fragment"),
    [
        ({"percent": -1}, "spec.mirror.percent", "between 0 and 100"),
        ({"percent": 0.125}, "spec.mirror.percent", "two decimals"),
        ({"percent": True}, "spec.mirror.percent", "must be a number"),
        ({"methods": ["GET"]}, "spec.mirror.percent", "required"),
        ({"percent": 1, "maxBodyBytes": 10 * 1024 * 1024 + 1}, "spec.mirror.maxBodyBytes", "between 0"),
        ({"percent": 1, "methods": ["GET", "GET"]}, "spec.mirror.methods[1]", "duplicate"),
        ({"percent": 1, "compare": {"body": True, "ignoreHeaders": ["X-A", "x-a"]}},
         "spec.mirror.compare.ignoreHeaders", "unique"),
        ({"percent": 1, "compare": {"ignoreHeaders": ["Date"]}}, "spec.mirror.compare.ignoreHeaders",
         "body: true"),
        ({"percent": 1, "compare": {"headers": True}}, "spec.mirror.compare.headers", "unknown field"),
        ("all", "spec.mirror", "must be an object"),
    ],
)  # fmt: skip
def test_bad_mirror_blocks_name_their_field(mirror: Any, path: str, fragment: str) -> None:
    with pytest.raises(CompileError) as caught:
        compile_route(route(mirror=mirror), UPSTREAMS)
    assert [e.path for e in caught.value.errors] == [path], caught.value.errors
    assert fragment in caught.value.errors[0].message


def test_mirroring_to_a_canary_that_is_also_stable_is_refused() -> None:
    with pytest.raises(CompileError) as caught:
        compile_route(route(canary="v1", mirror={"percent": 1}), UPSTREAMS)
    assert [(e.path, "also stable" in e.message) for e in caught.value.errors] == [("spec.mirror", True)]
    doc = compile_route(route(canary="v2", mirror={"percent": 1}), UPSTREAMS)
    doc["canary"] = "v1"
    with pytest.raises(ConfigError) as loaded:  # the proxy refuses such a document too
        load_route_document(seal(doc))
    assert [e.path for e in loaded.value.errors] == ["mirror"]


# -- the decision ----------------------------------------------------------------------------------------


def test_the_mirror_bucket_is_the_documented_hash() -> None:
    mirror = plan(37.5)
    keys = compile_keys(["header:X-User"])
    for user in ("u-1", "u-2", "ü-3", "x" * 300):
        expected = xxhash.xxh3_64_intdigest(b"shop/checkout\x00mirror\x00" + user.encode()) % 10_000
        assert mirrored(mirror, keys, view(**{"x-user": user}), 0.99) == (expected < 3750)


@settings(max_examples=200, deadline=None)
@given(user=st.text(min_size=1, max_size=40), low=st.integers(0, 10_000), high=st.integers(0, 10_000))
def test_sticky_and_monotone(user: str, low: int, high: int) -> None:
    low, high = sorted((low, high))
    keys = compile_keys(["header:X-User"])
    request = view(**{"x-user": user})
    at_low = mirrored(plan(low / 100), keys, request, 0.0)
    assert all(mirrored(plan(low / 100), keys, request, s) == at_low for s in (0.0, 0.5, 0.999))  # sticky
    if at_low:
        assert mirrored(plan(high / 100), keys, request, 0.0)  # raising the share never drops a key


def test_the_mirror_share_does_not_follow_the_split() -> None:
    """With weight 50 and mirror 50 on the same key, half of stable's users are mirrored (had the mirror used
    the split's bucket, none would be: the users under 5,000 are exactly the canary's)."""
    keys = compile_keys(["header:X-User"])
    users = [f"user-{i}" for i in range(20_000)]
    stable_users = [u for u in users if bucket(SALT, u) >= 5000]
    share = sum(mirrored(plan(50), keys, view(**{"x-user": u}), 0.0) for u in stable_users) / len(
        stable_users
    )
    assert 0.47 < share < 0.53


def test_without_a_sticky_key_the_sample_decides() -> None:
    keys = compile_keys(["header:X-User"])
    assert mirrored(plan(10), keys, view(), 0.0999) and not mirrored(plan(10), keys, view(), 0.1)
    assert not mirrored(plan(0), keys, view(), 0.0) and mirrored(plan(100), keys, view(), 0.9999)


def test_methods_limit_what_is_mirrored() -> None:
    mirror = plan(100, methods=("GET", "HEAD"))
    assert mirrored(mirror, (), view("GET"), 0.5) and not mirrored(mirror, (), view("POST"), 0.5)


def test_explain_says_whether_and_why() -> None:
    qa = {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Qa", "exact": "1"}]}}
    spec = {
        "mirror": {"percent": 100, "methods": ["GET"]},
        "sticky": {"keys": ["header:X-User"]},
        "rules": [qa],
    }
    doc = compile_route(route(**spec), UPSTREAMS)
    table = decide.RouteTable.build([load_route_document(doc)])
    out = decide.explain(table, view(**{"x-user": "u1"}), 0.5)["mirror"]
    assert out["mirrored"] is True and out["key"] == "header:X-User" and out["percent"] == 100
    assert out["bucket"] == bucket(SALT + "\x00mirror", "u1")
    assert decide.explain(table, view("POST"), 0.5)["mirror"]["why"] == "method POST is not in mirror.methods"
    qa = decide.explain(table, view(**{"x-qa": "1"}), 0.5)["mirror"]
    assert qa["mirrored"] is False and "stable" in qa["why"]
    assert explain_mirror(None, (), view(), "stable", 0.5) is None


# -- the comparison ----------------------------------------------------------------------------------------


def answer(status: int, lines: list[bytes], body: bytes, mirror: MirrorPlan) -> AnswerPrint:
    out = AnswerPrint(status, lines, mirror)
    for start in range(0, len(body), 3):  # in pieces, as bodies arrive
        out.feed(body[start : start + 3])
    return out


BODY = plan(
    100, max_body_bytes=8, compare=MirrorCompare(body=True, ignore_headers=frozenset({"x-request-id"}))
)
STATUS_ONLY = plan(100)
H = [b"Content-Type: text/plain\r\n", b"Date: Mon, 01 Jan 2026 00:00:00 GMT\r\n", b"X-Request-Id: 1\r\n"]


@pytest.mark.parametrize(
    ("mirror", "canary", "expected"),
    [
        (BODY, (200, H, b"12345678"), "match"),
        (BODY, (200, [H[0], b"Date: Tue, 02 Jan 2026 00:00:00 GMT\r\n", b"X-Request-Id: 2\r\n"], b"12345678"),
         "match"),  # Date and ignoreHeaders do not count
        (BODY, (200, H, b"12345678 and a different tail"), "match"),  # only the first maxBodyBytes count
        (BODY, (200, H, b"1234567X"), "body-mismatch"),
        (BODY, (200, [b"content-type:  text/plain \r\n", *H[1:]], b"12345678"), "match"),  # name case, spaces
        (BODY, (200, [b"Content-Type: text/html\r\n", *H[1:]], b"12345678"), "header-mismatch"),
        (BODY, (200, [*H, b"X-New: 1\r\n"], b"12345678"), "header-mismatch"),
        (BODY, (201, H, b"other"), "status-mismatch"),
        (STATUS_ONLY, (200, [b"X-New: 1\r\n"], b"other"), "match"),
        (STATUS_ONLY, (503, H, b"12345678"), "status-mismatch"),
    ],
)  # fmt: skip
def test_compare(mirror: MirrorPlan, canary: tuple[int, list[bytes], bytes], expected: str) -> None:
    stable = answer(200, H, b"12345678 tail", mirror)
    assert compare(stable, answer(*canary, mirror)) == expected


def test_header_print_is_an_order_free_multiset() -> None:
    ignored = frozenset({b"date"})
    assert header_print([b"A: 1\r\n", b"B: 2\r\n"], ignored) == header_print(
        [b"b: 2\r\n", b"a:1\r\n"], ignored
    )
    assert header_print([b"A: 1\r\n", b"A: 1\r\n"], ignored) != header_print([b"A: 1\r\n"], ignored)


def test_mismatch_rate_counts_only_compared_pairs() -> None:
    counts = {"match": 6.0, "status-mismatch": 1.0, "body-mismatch": 1.0, "canary-error": 5.0, "dropped": 9.0}
    assert mismatch_rate(counts) == (8.0, 2.0, 25.0)
    assert mismatch_rate({"dropped": 3.0}) == (0.0, 0.0, None)
