"""Verified JWT claims for the router, computed only when a rule or sticky key asks for them.

Each route with ``jwt`` settings gets a :class:`graylane.jwt.verifier.JwtVerifier` (kept across table swaps
while the settings are unchanged, so its verified-token cache stays warm). A token that fails is "no
claims" and is counted in ``graylane_jwt_rejected_total{reason}``. When a token names a key the verifier
does not have and the route has a ``jwksURL``, a background JWKS refresh is requested (single-flight,
rate-limited: :mod:`graylane.proxy.sources.jwks`); the request never waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from graylane.proxy.metrics import Metrics
from graylane.proxy.request import HeaderMap
from graylane.proxy.sources.jwks import JwksFetcher
from graylane.proxy.sources.secrets import SecretStore

from graylane.config.model import JwtSettings, RouteConfig

Claims = Mapping[str, Any] | None


class Verifier(Protocol):
    """A route's :class:`graylane.jwt.verifier.JwtVerifier`, as the proxy uses it. The module is imported
    when a route first has ``jwt``: a proxy without JWT routes never loads PyJWT and cryptography."""

    def verify_authorization(self, authorization: str, *, now: float) -> Claims: ...

    def set_jwks(self, jwks: Any) -> None: ...


_REFRESH_REASONS = frozenset({"unknown-kid", "no-key"})


class ClaimsSource:
    """Builds the view's lazy ``claims`` callable for a route's verifier."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def lazy(self, verifier: Verifier | None, headers: Any) -> Callable[[], Claims] | None:
        if verifier is None:
            return None
        clock = self._clock

        def claims() -> Claims:
            value = headers.get("authorization")
            if value is None or _repeated(headers, "authorization"):
                return None  # absent, or sent twice: no claims
            return verifier.verify_authorization(value, now=clock())

        return claims


def _repeated(headers: Any, name: str) -> bool:
    if isinstance(headers, HeaderMap):  # the fast server's headers know their repeated names
        return bool(headers.repeated(name))
    return len(headers.getall(name, ())) > 1


class Verifiers:
    """One verifier per route, reused while the route's ``jwt`` settings (and HS* secret) stay the same."""

    def __init__(self, *, metrics: Metrics, jwks: JwksFetcher, secrets: SecretStore) -> None:
        self._metrics = metrics
        self._jwks = jwks
        self.secrets = secrets
        self._current: dict[str, tuple[JwtSettings, bytes | None, Verifier]] = {}

    def for_route(self, config: RouteConfig) -> Verifier | None:
        """The verifier of ``config`` (None without ``jwt``); the route's previous one is kept when equal."""
        if config.jwt is None:
            self.forget(config.key)
            return None
        ref = config.jwt.secret_ref
        secret = self.secrets.get(ref) if ref is not None else None
        current = self._current.get(config.key)
        if current is not None and current[0] == config.jwt and current[1] == secret:
            return current[2]
        self.forget(config.key)
        verifier = self._make(config.jwt, secret)
        self._current[config.key] = (config.jwt, secret, verifier)
        return verifier

    def forget(self, key: str) -> None:
        """The route ``key`` left (or changed its settings): its verifier stops getting JWKS updates."""
        current = self._current.pop(key, None)
        if current is not None and current[0].jwks_url:
            self._jwks.detach(current[2], current[0].jwks_url)

    def _make(self, settings: JwtSettings, secret: bytes | None) -> Verifier:
        from graylane.jwt.verifier import JwtVerifier

        url = settings.jwks_url
        fetcher = self._jwks
        metrics = self._metrics

        def rejected(reason: str) -> None:
            metrics.jwt_failed(reason)
            if url and reason in _REFRESH_REASONS:
                fetcher.request(url)

        verifier = JwtVerifier(settings, secret=secret, on_reject=rejected)
        if url:
            fetcher.attach(verifier, url)
        return verifier
