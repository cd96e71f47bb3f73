"""Hostile-input properties: the core's parsers answer every input with a result or their own error type.

These run the same way as a fuzzer's corpus would (reliability.md G1), with hypothesis generating the inputs:
the loader only ever raises ConfigError, the JWT verifier and client-IP resolver never raise at all, and
decide() never raises on any header/query/cookie/IP combination.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graylane.config.document import ConfigError, load_route_document, seal
from graylane.config.model import JwtSettings
from graylane.jwt.verifier import JwtVerifier
from graylane.routing.clientip import ClientIpResolver
from graylane.routing.decide import RouteTable, decide, explain
from tests.unit.docs import base_document
from tests.unit.views import view

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(st.binary(max_size=300))
def test_loader_on_random_bytes(raw: bytes) -> None:
    try:
        load_route_document(raw)
    except ConfigError as exc:
        assert exc.errors


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


DOC = base_document(
    versionRouting={
        "header": "X-Version",
        "metadataKey": "version",
        "candidates": ["checkout-v1", "checkout-v2"],
    }
)
PATHS = _paths(DOC)


@FAST
@given(path=st.sampled_from(PATHS), value=JSONISH, delete=st.booleans())
def test_loader_on_mutated_documents(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    doc = copy.deepcopy(DOC)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        config = load_route_document(json.dumps(seal(doc)))
    except ConfigError as exc:
        assert all(e.path is not None and e.message for e in exc.errors)
    else:  # whatever loads must also route without errors
        table = RouteTable.build([config])
        decide(table, view(headers={"X-Canary": "true", "X-Version": "v1"}), 0.5)


VERIFIER = JwtVerifier(
    JwtSettings(
        issuer="i",
        audiences=("a",),
        algorithms=("RS256", "ES256", "EdDSA"),
        leeway_seconds=30,
        public_keys=(),
        jwks_url=None,
        secret_ref=None,
    )
)
B64ISH = st.text(alphabet="ABCDEFabcdef0123456789-_.=+/ \x00é", max_size=200)


@FAST
@given(st.one_of(B64ISH, st.text(max_size=200)))
def test_jwt_verifier_never_raises(token: str) -> None:
    claims, reason = VERIFIER.verify_detailed(token, now=1_800_000_000)
    assert claims is None and reason


RESOLVER = ClientIpResolver(["127.0.0.0/8", "::1/128"])
HOPS = st.text(alphabet='0123456789abcdef:.[]%, ;="forunknw_x', max_size=80)


@FAST
@given(
    peer=st.sampled_from(["127.0.0.1", "::1", "203.0.113.1", "bad"]),
    xff=st.none() | HOPS,
    fwd=st.none() | HOPS,
)
def test_client_ip_resolver_never_raises(peer: str, xff: str | None, fwd: str | None) -> None:
    out = RESOLVER.resolve(peer, xff, fwd)
    assert isinstance(out, str) and out


RULES = [
    {"name": "h", "to": "canary", "match": {"headers": [{"name": "X-A", "regex": "(a+)+$"}]}},
    {"name": "q", "to": "canary", "match": {"query": [{"name": "a", "prefix": "x"}], "methods": ["POST"]}},
    {
        "name": "c",
        "to": "canary",
        "match": {"cookies": [{"name": "s", "in": ["1"]}], "path": {"suffix": "/x"}},
    },
    {"name": "ip", "to": "stable", "match": {"sourceCIDRs": ["10.0.0.0/8", "::/0"]}},
]
TABLE = RouteTable.build([load_route_document(seal(base_document(rules=RULES, hosts=[])))])


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=100)  # lone surrogates too (aiohttp's
# surrogate-escaped non-UTF-8 header bytes)


@FAST
@given(
    header=ANY_TEXT,
    query=ANY_TEXT,
    cookie=ANY_TEXT,
    ip=st.one_of(st.none(), st.text(max_size=40), st.ip_addresses().map(str)),
    path=st.text(max_size=40),
    sample=st.floats(0, 0.999999),
)
def test_decide_never_raises(
    header: str, query: str, cookie: str, ip: str | None, path: str, sample: float
) -> None:
    v = view(headers={"X-A": header, "Cookie": cookie, "X-User-Id": header}, query=query, client_ip=ip,
             path="/" + path)  # fmt: skip
    d = decide(TABLE, v, sample)
    assert d is not None and TABLE.routes[0].upstream_of(d) in ("checkout-v1", "checkout-v2")
    assert explain(TABLE, v, sample)["reason"] == d.reason


SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
SIGNED_VERIFIER = JwtVerifier(
    JwtSettings(
        issuer="i",
        audiences=("a",),
        algorithms=("ES256",),
        leeway_seconds=30,
        public_keys=(
            SIGNING_KEY.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
        ),
        jwks_url=None,
        secret_ref=None,
    )
)
CLAIM_VALUES = JSONISH | st.integers(-(10**25), 10**25) | st.floats(allow_nan=False, allow_infinity=False)


@FAST
@given(
    claims=st.fixed_dictionaries(
        {},
        optional={k: CLAIM_VALUES for k in ("exp", "nbf", "iat", "iss", "aud", "sub")},
    ),
    headers=st.dictionaries(st.sampled_from(["kid", "typ", "crit", "jku", "b64"]), JSONISH, max_size=3),
)
def test_jwt_verifier_on_validly_signed_odd_claims(claims: dict[str, Any], headers: dict[str, Any]) -> None:
    try:
        tok = jwt.encode(claims, SIGNING_KEY, algorithm="ES256", headers=headers)
    except (TypeError, ValueError, jwt.PyJWTError):
        return
    got, reason = SIGNED_VERIFIER.verify_detailed(tok, now=1_800_000_000)
    assert (got is None) != (reason is None)
    if got is not None:
        assert got["iss"] == "i" and got["exp"] > 1_800_000_000 - 30
