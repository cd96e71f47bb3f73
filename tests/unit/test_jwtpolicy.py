"""JWT verification: forged and tricky tokens (reliability.md §4.4) each give None and a reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from graylane.config.model import JwtSettings, SecretRef
from graylane.jwt.keyset import JwksError, JwkSet
from graylane.jwt.verifier import JwtVerifier, bearer_token

NOW = 1_800_000_000.0
ISS = "https://auth.example.com"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
SECRET = b"s" * 32


def pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def settings(algorithms: tuple[str, ...] = ("RS256",), **kw: Any) -> JwtSettings:
    base: dict[str, Any] = {
        "issuer": ISS,
        "audiences": ("shop",),
        "algorithms": algorithms,
        "leeway_seconds": 30,
        "public_keys": (pem(RSA_KEY),),
        "jwks_url": None,
        "secret_ref": None,
    }
    base.update(kw)
    return JwtSettings(**base)


def claims(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "u-1", "iss": ISS, "aud": "shop", "exp": NOW + 600, "role": ["beta"]}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any = RSA_KEY, alg: str = "RS256", headers: dict[str, Any] | None = None, **kw: Any) -> str:
    return jwt.encode(claims(**kw), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: bytes, signature: bytes = b"sig") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(signature)}"


def verify(tok: str, verifier: JwtVerifier | None = None, now: float = NOW) -> tuple[Any, str | None]:
    return (verifier or JwtVerifier(settings())).verify_detailed(tok, now=now)


# --- the good path -------------------------------------------------------------------------------------
def test_valid_rs256() -> None:
    got, reason = verify(token())
    assert reason is None and got is not None
    assert got["sub"] == "u-1" and got["role"] == ["beta"]


@pytest.mark.parametrize(
    ("alg", "key", "verifier_kw"),
    [
        ("ES256", EC_KEY, {"public_keys": (pem(EC_KEY),)}),
        ("EdDSA", ED_KEY, {"public_keys": (pem(ED_KEY),)}),
        ("RS512", RSA_KEY, {}),
    ],
)
def test_valid_other_algorithms(alg: str, key: Any, verifier_kw: dict[str, Any]) -> None:
    v = JwtVerifier(settings((alg,), **verifier_kw))
    assert verify(token(key, alg), v)[1] is None


def test_valid_hs256_with_configured_secret() -> None:
    v = JwtVerifier(settings(("HS256",), public_keys=(), secret_ref=SecretRef("s", "k")), secret=SECRET)
    assert verify(token(SECRET, "HS256"), v)[1] is None


def test_audience_list_containing_ours() -> None:
    assert verify(token(aud=["other", "shop"]))[1] is None


def test_exp_within_leeway_is_accepted() -> None:
    assert verify(token(exp=NOW - 10))[1] is None


# --- forged and tricky tokens ----------------------------------------------------------------------------
RSA_PEM_BYTES = pem(RSA_KEY).encode()
FORGED = [
    ("alg-none-with-dot", raw_token({"alg": "none"}, json.dumps(claims()).encode(), b""), "malformed"),
    ("alg-none-signature", raw_token({"alg": "none"}, json.dumps(claims()).encode()), "alg-not-allowed"),
    ("alg-None", raw_token({"alg": "None"}, json.dumps(claims()).encode()), "alg-not-allowed"),
    ("alg-NONE", raw_token({"alg": "NONE"}, json.dumps(claims()).encode()), "alg-not-allowed"),
    ("alg-missing", raw_token({"typ": "JWT"}, json.dumps(claims()).encode()), "alg-not-allowed"),
    ("hs256-not-allowed", raw_token({"alg": "HS256"}, json.dumps(claims()).encode()), "alg-not-allowed"),
    ("expired", token(exp=NOW - 31), "expired"),
    ("exp-exactly-at-leeway", token(exp=NOW - 30), "expired"),
    ("missing-exp", token(exp=None), "missing-exp"),
    ("exp-as-string", token(exp="9999999999"), "missing-exp"),
    ("nbf-in-future", token(nbf=NOW + 31), "not-yet-valid"),
    ("iat-far-in-future", token(iat=NOW + 3600), "issued-in-future"),
    ("wrong-issuer", token(iss="https://evil.example.com"), "wrong-issuer"),
    ("missing-issuer", token(iss=None), "wrong-issuer"),
    ("wrong-audience", token(aud="billing"), "wrong-audience"),
    ("audience-list-without-ours", token(aud=["billing", "x"]), "wrong-audience"),
    ("missing-audience", token(aud=None), "wrong-audience"),
    ("signed-by-other-key", token(OTHER_RSA), "bad-signature"),
    ("tampered-payload", (lambda t: t.split(".")[0] + "." + b64(json.dumps(claims(sub="admin")).encode())
                          + "." + t.split(".")[2])(token()), "bad-signature"),
    ("jku-to-attacker-key", token(OTHER_RSA, headers={"jku": "https://evil/jwks", "jwk": {"kty": "RSA"}}),
     "bad-signature"),
    ("garbage", "not-a-token", "malformed"),
    ("two-segments", "abc.def", "malformed"),
    ("jwe-five-segments", "a.b.c.d.e", "malformed"),
    ("non-base64url-chars", "ab$c.def.ghi", "malformed"),
    ("padding", token().split(".")[0] + "=." + ".".join(token().split(".")[1:]), "malformed"),
    ("header-not-json", b64(b"{nope") + ".e30.c2ln", "malformed"),
    ("header-is-list", b64(b"[1]") + ".e30.c2ln", "malformed"),
    ("huge-token", "a" * 65_536, "too-large"),
    ("ten-thousand-claims", token(**{f"c{i}": i for i in range(10_000)}), "too-large"),
]  # fmt: skip


@pytest.mark.parametrize(("tok", "reason"), [c[1:] for c in FORGED], ids=[c[0] for c in FORGED])
def test_forged_token_gives_no_claims_and_a_reason(tok: str, reason: str) -> None:
    assert verify(tok) == (None, reason)


def test_hs256_signed_with_the_rsa_public_key_is_refused_even_when_hs256_is_allowed() -> None:
    # The classic confusion attack: HMAC-SHA256 over the token with the RSA public key PEM as the secret.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims()).encode())}".encode()
    sig = hmac.new(RSA_PEM_BYTES, signing_input, hashlib.sha256).digest()
    confused = signing_input.decode() + "." + b64(sig)
    no_secret = JwtVerifier(settings(("RS256", "HS256")))
    assert verify(confused, no_secret) == (None, "no-key")
    with_secret = JwtVerifier(settings(("RS256", "HS256")), secret=SECRET)
    assert verify(confused, with_secret) == (None, "bad-signature")


def test_duplicate_claim_in_payload_is_malformed() -> None:
    payload = b'{"sub":"u-1","iss":"%s","aud":"shop","exp":%d,"group":"beta","group":"prod"}' % (
        ISS.encode(),
        int(NOW + 600),
    )
    tok = jwt.api_jws.PyJWS().encode(payload, RSA_KEY, algorithm="RS256")
    assert verify(tok) == (None, "malformed")


def test_es256_signature_in_der_encoding_is_refused() -> None:
    from cryptography.hazmat.primitives import hashes

    v = JwtVerifier(settings(("ES256",), public_keys=(pem(EC_KEY),)))
    good = token(EC_KEY, "ES256")
    signing_input = good.rsplit(".", 1)[0].encode()
    der = EC_KEY.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    assert verify(signing_input.decode() + "." + b64(der), v) == (None, "bad-signature")


def test_rsa_key_cannot_verify_es256() -> None:
    assert verify(token(EC_KEY, "ES256"), JwtVerifier(settings(("RS256", "ES256"))))[1] == "no-key"


# --- cache -----------------------------------------------------------------------------------------------
def test_cache_serves_until_exp_and_never_after() -> None:
    rejected: list[str] = []
    v = JwtVerifier(settings(), on_reject=rejected.append)
    tok = token(exp=NOW + 100)
    assert v.verify(tok, now=NOW) is not None
    assert v.cache_len() == 1
    assert v.verify(tok, now=NOW + 99.9) is v.verify(tok, now=NOW + 50)  # served from the cache
    assert v.verify(tok, now=NOW + 100 + 31) is None
    assert rejected == ["expired"]
    assert v.cache_len() == 0


def test_cache_is_bounded_lru() -> None:
    v = JwtVerifier(settings(), cache_size=2)
    tokens = [token(sub=f"u{i}") for i in range(3)]
    for t in tokens:
        assert v.verify(t, now=NOW) is not None
    assert v.cache_len() == 2


def test_failed_tokens_are_reported_every_time_and_never_served_as_claims() -> None:
    reasons: list[str] = []
    v = JwtVerifier(settings(), on_reject=reasons.append)
    for _ in range(2):
        assert v.verify("garbage", now=NOW) is None
    assert reasons == ["malformed", "malformed"] and v.cache_len() == 0


def test_permanent_rejections_are_remembered_time_dependent_ones_are_not() -> None:
    reasons: list[str] = []
    v = JwtVerifier(settings(), on_reject=reasons.append)
    expired, early = token(exp=NOW - 100), token(nbf=NOW + 100)
    for _ in range(3):
        assert v.verify(expired, now=NOW) is None
    assert v.rejected_len() == 1
    assert v.verify(early, now=NOW) is None
    assert v.rejected_len() == 1, "not-yet-valid becomes valid later: never remembered"
    assert v.verify(early, now=NOW + 101) is not None
    assert reasons == ["expired"] * 3 + ["not-yet-valid"]


def test_new_key_set_clears_remembered_rejections() -> None:
    jwks = JwkSet.from_json(json.dumps({"keys": [jwk(OTHER_RSA, "k1")]}))
    v = JwtVerifier(settings(public_keys=(), jwks_url="https://a.example.com/k"), jwks=jwks)
    tok = token(headers={"kid": "k1"})
    assert v.verify(tok, now=NOW) is None and v.rejected_len() == 1
    v.set_jwks(JwkSet.from_json(json.dumps({"keys": [jwk(RSA_KEY, "k1")]})))
    assert v.rejected_len() == 0 and v.verify(tok, now=NOW) is not None


def test_claims_are_read_only() -> None:
    got = JwtVerifier(settings()).verify(token(), now=NOW)
    assert got is not None
    with pytest.raises(TypeError):
        got["sub"] = "admin"  # type: ignore[index]


# --- JWKS ----------------------------------------------------------------------------------------------
def jwk(key: Any, kid: str | None, **extra: Any) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    if kid:
        data["kid"] = kid
    data.update(extra)
    return data


def test_jwks_by_kid_unknown_kid_and_rotation() -> None:
    jwks = JwkSet.from_json(json.dumps({"keys": [jwk(RSA_KEY, "k1")]}))
    v = JwtVerifier(settings(public_keys=(), jwks_url="https://auth.example.com/jwks"), jwks=jwks)
    assert verify(token(headers={"kid": "k1"}), v)[1] is None
    rotated = token(OTHER_RSA, headers={"kid": "k2"})
    assert verify(rotated, v) == (None, "unknown-kid")
    assert not jwks.has_kid("k2")
    v.set_jwks(JwkSet.from_json(json.dumps({"keys": [jwk(RSA_KEY, "k1"), jwk(OTHER_RSA, "k2")]})))
    assert verify(rotated, v)[1] is None


def test_jwk_alg_binds_the_key_to_that_algorithm() -> None:
    jwks = JwkSet.from_json(json.dumps({"keys": [jwk(RSA_KEY, "k1", alg="RS512")]}))
    v = JwtVerifier(
        settings(("RS256", "RS512"), public_keys=(), jwks_url="https://a.example.com/k"), jwks=jwks
    )
    assert verify(token(alg="RS512", headers={"kid": "k1"}), v)[1] is None
    assert verify(token(alg="RS256", headers={"kid": "k1"}), v) == (None, "no-key")


def test_jwks_skips_symmetric_encryption_and_bad_keys() -> None:
    doc = {
        "keys": [
            {"kty": "oct", "k": b64(SECRET), "kid": "hs"},
            jwk(RSA_KEY, "enc", use="enc"),
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not-an-object",
            jwk(RSA_KEY, "ok"),
            jwk(OTHER_RSA, None),
        ]
    }
    jwks = JwkSet.from_document(doc)
    assert set(jwks.by_kid) == {"ok"} and len(jwks.anonymous) == 1
    assert len(jwks.skipped) == 4


@pytest.mark.parametrize("raw", ["[]", '{"keys": {}}', "nope", '{"keys": [1], "keys": []}'])
def test_jwks_that_is_not_a_jwks(raw: str) -> None:
    with pytest.raises(JwksError):
        JwkSet.from_json(raw)


# --- bearer token extraction -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("Bearer   abc.def.ghi  ", "abc.def.ghi"),
        ("abc.def.ghi", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        (None, None),
        (["Bearer a.b.c"], "a.b.c"),
        (["Bearer a.b.c", "Bearer x.y.z"], None),
    ],
)
def test_bearer_token(value: Any, expected: str | None) -> None:
    assert bearer_token(value) == expected
