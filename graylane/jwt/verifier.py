"""JWT verification for routing: verify before use, fixed allow-list, bounded cache of verified tokens.

A token that fails any check yields ``None`` ("no claims") and a short reason for
``graylane_jwt_rejected_total{reason}`` -- never an exception. Checks, in order: size and shape (three
base64url segments; JWE and extra segments are malformed), header ``alg`` in the route's algorithms (never
``none``), a key of the right type for that alg (:mod:`graylane.jwt.algorithms`: HS* only with the configured
secret, so an RS256 public key can never act as an HMAC secret), the signature (PyJWT), then the claims
against ``now``: ``exp`` required, ``nbf``/``iat`` not in the future, ``iss`` equal, ``aud`` intersecting the
configured audiences (not checked when none are configured); ``leeway`` applies to the time claims.
``jku``/``x5u``/``jwk``/``x5c`` headers are ignored: keys come only from the route and the proxy's JWKS fetch.

Cache: token string -> claims, served only while ``now < exp`` (never past ``exp``, even within the leeway).
A second, smaller cache remembers tokens that failed for a reason time cannot cure (bad signature, expired,
wrong issuer ...), so a client replaying one bad token does not cost a signature check per request; both
caches are cleared when the key set changes.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jwt
from graylane.jwt import algorithms as jwtkeys
from graylane.jwt.keyset import JwkSet
from graylane.strictjson import StrictJsonError, loads_strict

if TYPE_CHECKING:
    from graylane.config.model import JwtSettings

__all__ = ["JwkSet", "JwtVerifier", "bearer_token"]

MAX_TOKEN_BYTES = 8192
DEFAULT_CACHE_SIZE = 4096
NEGATIVE_CACHE_SIZE = 1024
# Rejections that stay true as time passes and keys stay the same (not unknown-kid, not-yet-valid, ...).
PERMANENT_REASONS = frozenset(
    {
        "malformed",
        "alg-not-allowed",
        "bad-signature",
        "expired",
        "missing-exp",
        "wrong-issuer",
        "wrong-audience",
    }
)
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_JWS = jwt.PyJWS()
Claims = Mapping[str, Any]
Outcome = tuple[Claims | None, str | None]


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def bearer_token(authorization: str | Sequence[str] | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when absent, malformed, or sent twice."""
    if authorization is None:
        return None
    if not isinstance(authorization, str):
        if len(authorization) != 1:
            return None
        authorization = authorization[0]
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_BYTES or " " in token:
        return None
    return token


def _b64json(segment: str, *, what: str) -> Any:
    if not segment or not _B64URL.issuperset(segment):
        raise _Reject("malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return loads_strict(raw, max_bytes=MAX_TOKEN_BYTES, max_depth=8)
    except (binascii.Error, ValueError, StrictJsonError):
        raise _Reject("malformed") from None


class JwtVerifier:
    """Verifies tokens for one route. Keys: the route's PEM keys, an optional JWKS and an HS* secret."""

    def __init__(
        self,
        settings: JwtSettings,
        *,
        secret: bytes | None = None,
        jwks: JwkSet | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.algorithms = frozenset(settings.algorithms) & jwtkeys.ALLOWED_ALGORITHMS
        self.static_keys = tuple(jwtkeys.load_public_key(pem) for pem in settings.public_keys)
        self.secret = secret
        self.jwks = jwks
        self.audiences = frozenset(settings.audiences)
        self.leeway = settings.leeway_seconds
        self.on_reject = on_reject
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[Claims, float]] = OrderedDict()
        self._rejected: OrderedDict[str, str] = OrderedDict()
        self._by_header: dict[str, tuple[Claims, float]] = {}  # Authorization value -> verified claims

    def set_jwks(self, jwks: JwkSet) -> None:
        """Swap in a freshly fetched key set; both caches are dropped (a key may be new or revoked)."""
        self.jwks = jwks
        self._cache.clear()
        self._rejected.clear()
        self._by_header.clear()

    def verify(self, token: str, *, now: float) -> Claims | None:
        """Verified claims of ``token`` at time ``now`` (epoch seconds), or None."""
        hit = self._cache.get(token)
        if hit is not None:
            if now < hit[1]:
                self._cache.move_to_end(token)
                return hit[0]
            del self._cache[token]
        reason = self._rejected.get(token)
        if reason is None:
            claims, reason = self.verify_detailed(token, now=now)
            if reason is None:
                return claims
            if reason in PERMANENT_REASONS:
                self._rejected[token] = reason
                if len(self._rejected) > NEGATIVE_CACHE_SIZE:
                    self._rejected.popitem(last=False)
        if self.on_reject is not None:
            self.on_reject(reason)
        return None

    def verify_authorization(self, authorization: str, *, now: float) -> Claims | None:
        """:meth:`verify` for one ``Authorization`` header value (``Bearer <token>``), with a cache of its
        own keyed by the whole value: a repeat costs one lookup instead of parsing the header again."""
        hit = self._by_header.get(authorization)
        if hit is not None and now < hit[1]:
            return hit[0]
        token = bearer_token(authorization)
        if token is None:
            return None
        claims = self.verify(token, now=now)
        if claims is not None:
            if len(self._by_header) >= self._cache_size:
                del self._by_header[next(iter(self._by_header))]  # the oldest entry
            self._by_header[authorization] = (claims, float(claims["exp"]))
        return claims

    def verify_detailed(self, token: str, *, now: float) -> Outcome:
        """Uncached verification: ``(claims, None)`` or ``(None, reason)``."""
        try:
            claims = self._verify(token, now)
        except _Reject as rejected:
            return None, rejected.reason
        self._remember(token, claims)
        return claims, None

    def cache_len(self) -> int:
        return len(self._cache)

    def rejected_len(self) -> int:
        return len(self._rejected)

    def _remember(self, token: str, claims: Claims) -> None:
        self._cache[token] = (claims, float(claims["exp"]))
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _verify(self, token: str, now: float) -> Claims:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
            raise _Reject("too-large" if isinstance(token, str) else "malformed")
        parts = token.split(".")
        if len(parts) != 3 or not parts[2]:
            raise _Reject("malformed")
        header = _b64json(parts[0], what="header")
        if not isinstance(header, dict):
            raise _Reject("malformed")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise _Reject("alg-not-allowed")
        payload = self._check_signature(token, alg, header.get("kid"))
        claims = loads_payload(payload)
        self._check_claims(claims, now)
        return MappingProxyType(claims)

    def _keys_for(self, alg: str, kid: Any) -> list[Any]:
        if alg in jwtkeys.HMAC_ALGS:
            keys: list[Any] = [self.secret] if self.secret is not None else []
        else:
            keys = []
            if self.jwks is not None:
                keys.extend(self.jwks.candidates(kid if isinstance(kid, str) else None, alg))
            keys.extend(self.static_keys)
        fitting = [k for k in keys if jwtkeys.key_fits(alg, k)]
        if not fitting:
            unknown = isinstance(kid, str) and self.jwks is not None and not self.jwks.has_kid(kid)
            raise _Reject("unknown-kid" if unknown else "no-key")
        return fitting

    def _check_signature(self, token: str, alg: str, kid: Any) -> bytes:
        for key in self._keys_for(alg, kid):
            try:
                payload: bytes = _JWS.decode(token, key=key, algorithms=[alg])
                return payload
            except jwt.InvalidSignatureError:
                continue
            except (jwt.PyJWTError, ValueError, TypeError):
                raise _Reject("malformed") from None
        raise _Reject("bad-signature")

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        leeway = self.leeway
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _Reject("missing-exp")
        if now >= exp + leeway:
            raise _Reject("expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or now + leeway < nbf):
            raise _Reject("not-yet-valid")
        iat = claims.get("iat")
        if iat is not None and (not _is_number(iat) or iat > now + leeway):
            raise _Reject("issued-in-future")
        if claims.get("iss") != self.settings.issuer:
            raise _Reject("wrong-issuer")
        if self.audiences:
            aud = claims.get("aud")
            given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(isinstance(a, str) and a in self.audiences for a in given):
                raise _Reject("wrong-audience")


def loads_payload(payload: bytes) -> dict[str, Any]:
    try:
        claims = loads_strict(payload, max_bytes=MAX_TOKEN_BYTES, max_depth=8)
    except StrictJsonError:
        raise _Reject("malformed") from None
    if not isinstance(claims, dict):
        raise _Reject("malformed")
    return claims


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
