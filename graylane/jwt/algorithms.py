"""JWT algorithms and key types: the fixed allow-list and which key may verify which algorithm.

The rule that prevents algorithm confusion lives here: an HMAC algorithm is verified only with a
configured secret (bytes), never with a public key; an RSA algorithm only with an RSA public key;
ES256/ES384 only with an EC key on the matching curve; EdDSA only with an Ed25519/Ed448 key.
``none`` is never allowed.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

RSA_ALGS = frozenset({"RS256", "RS384", "RS512"})
EC_ALGS = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
EDDSA_ALGS = frozenset({"EdDSA"})
HMAC_ALGS = frozenset({"HS256", "HS384", "HS512"})
ALLOWED_ALGORITHMS = frozenset(RSA_ALGS | set(EC_ALGS) | EDDSA_ALGS | HMAC_ALGS)
ASYMMETRIC_ALGS = frozenset(ALLOWED_ALGORITHMS - HMAC_ALGS)
MIN_HMAC_SECRET_BYTES = 32

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey


def key_fits(alg: str, key: Any) -> bool:
    """True when ``key`` is the right kind of key for ``alg`` (the HS/RS confusion guard)."""
    if alg in HMAC_ALGS:
        return isinstance(key, bytes) and len(key) >= MIN_HMAC_SECRET_BYTES
    if alg in RSA_ALGS:
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    curve = EC_ALGS.get(alg)
    if curve is not None:
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)
    if alg in EDDSA_ALGS:
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False


def load_public_key(pem: str) -> PublicKey:
    """Parse one PEM ``PUBLIC KEY``; raises ``ValueError`` for anything else (private keys, certs, junk)."""
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key ({type(exc).__name__})") from None
    if not isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
    ):
        raise ValueError(f"unsupported key type {type(key).__name__}")
    return key


def fitting_algorithms(key: Any, algorithms: frozenset[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The algorithms of ``algorithms`` that ``key`` may verify."""
    return tuple(alg for alg in algorithms if key_fits(alg, key))
