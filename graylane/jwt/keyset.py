"""A parsed JSON Web Key Set (the proxy fetches it; this module only parses and answers "which keys").

Only public signature keys are kept: ``kty`` RSA, EC (P-256, P-384) and OKP (Ed25519/Ed448). Symmetric
(``oct``) keys, keys with ``use`` other than ``sig``, and unparsable keys are skipped and listed in
``skipped`` -- an HS* secret never comes from a JWKS URL. :meth:`JwkSet.has_kid` tells the proxy when a
token names a key it does not know, so it can refresh (single-flight, rate-limited, on its side).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from graylane.jwt import algorithms as jwtkeys
from graylane.strictjson import StrictJsonError, loads_strict

MAX_JWKS_BYTES = 512 * 1024
MAX_KEYS = 100


class JwksError(ValueError):
    """The document is not a JWKS at all (keys that fail individually are skipped instead)."""


@dataclass(frozen=True, slots=True)
class JwkSet:
    by_kid: Mapping[str, jwtkeys.PublicKey] = field(default_factory=dict)
    anonymous: tuple[jwtkeys.PublicKey, ...] = ()  # keys without a kid
    skipped: tuple[str, ...] = ()  # why some keys were not used
    alg_of: Mapping[str, str] = field(default_factory=dict)  # kid -> the JWK's "alg", when it names one

    @classmethod
    def from_json(cls, raw: str | bytes) -> JwkSet:
        try:
            doc = loads_strict(raw, max_bytes=MAX_JWKS_BYTES, max_depth=8)
        except StrictJsonError as exc:
            raise JwksError(str(exc)) from None
        return cls.from_document(doc)

    @classmethod
    def from_document(cls, doc: Any) -> JwkSet:
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise JwksError('a JWKS is an object with a "keys" list')
        by_kid: dict[str, jwtkeys.PublicKey] = {}
        alg_of: dict[str, str] = {}
        anonymous: list[jwtkeys.PublicKey] = []
        skipped: list[str] = []
        for i, item in enumerate(doc["keys"][:MAX_KEYS]):
            key, problem = _public_key(item)
            kid = item.get("kid") if isinstance(item, dict) else None
            if key is None:
                skipped.append(f"keys[{i}]: {problem}")
            elif isinstance(kid, str) and kid:
                if kid in by_kid:
                    skipped.append(f"keys[{i}]: duplicate kid")
                else:
                    by_kid[kid] = key
                    if isinstance(item.get("alg"), str):
                        alg_of[kid] = item["alg"]
            else:
                anonymous.append(key)
        if len(doc["keys"]) > MAX_KEYS:
            skipped.append(f"only the first {MAX_KEYS} keys are used")
        return cls(by_kid=by_kid, anonymous=tuple(anonymous), skipped=tuple(skipped), alg_of=alg_of)

    def has_kid(self, kid: str) -> bool:
        return kid in self.by_kid

    def candidates(self, kid: str | None, alg: str | None = None) -> tuple[jwtkeys.PublicKey, ...]:
        """The key named by ``kid`` (only if its JWK ``alg``, when given, is ``alg``); without a kid, every
        key (the caller filters by type)."""
        if kid is not None:
            key = self.by_kid.get(kid)
            bound = self.alg_of.get(kid)
            if key is None or (alg is not None and bound is not None and bound != alg):
                return ()
            return (key,)
        return (*self.by_kid.values(), *self.anonymous)


def _public_key(item: Any) -> tuple[jwtkeys.PublicKey | None, str]:
    if not isinstance(item, dict):
        return None, "not an object"
    if item.get("kty") not in ("RSA", "EC", "OKP"):
        return None, "kty must be RSA, EC or OKP (symmetric keys are not taken from a JWKS)"
    if item.get("use", "sig") != "sig":
        return None, "use is not sig"
    alg = item.get("alg")
    if alg is not None and alg not in jwtkeys.ASYMMETRIC_ALGS:
        return None, "alg is not an allowed asymmetric algorithm"
    try:
        key = jwt.PyJWK(item).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None, "not a valid key"
    public = key.public_key() if hasattr(key, "public_key") else key
    if not isinstance(public, jwtkeys.PublicKey):
        return None, "unsupported key type"
    return public, ""
