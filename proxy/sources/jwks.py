"""JWKS by URL: fetched in the background, single-flight per URL, rate-limited, stale kept on failure.

A verifier attached to a URL gets the key set as soon as the first fetch succeeds and again on every
successful refresh. A refresh is requested on an unknown ``kid``; requests closer together than
``min_interval`` seconds (default 10) are ignored, so a flood of random kids costs at most one fetch per
interval. A failed fetch keeps the previous set. Nothing on the request path awaits a fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

if TYPE_CHECKING:  # imported when a route first needs JWT (PyJWT and cryptography are 10 MiB of memory)
    from graylane.jwt.keyset import JwkSet

log = logging.getLogger("graylane.proxy")


class Subscriber(Protocol):
    """A verifier that wants the key set of a URL (``graylane.jwt.verifier.JwtVerifier``)."""

    def set_jwks(self, jwks: Any) -> None: ...


class JwksFetcher:
    def __init__(
        self, *, min_interval: float = 10.0, timeout: float = 5.0, clock: Callable[[], float] | None = None
    ) -> None:
        self.min_interval = min_interval
        self.clock = clock
        """What ``min_interval`` is measured with (default: the event loop's clock)."""
        self.timeout = timeout
        self.sets: dict[str, JwkSet] = {}
        self.fetches: dict[str, int] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._last: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def attach(self, verifier: Subscriber, url: str) -> None:
        self._subscribers.setdefault(url, []).append(verifier)
        known = self.sets.get(url)
        if known is not None:
            verifier.set_jwks(known)
        else:
            self.request(url)

    def detach(self, verifier: Subscriber, url: str) -> None:
        subs = self._subscribers.get(url, [])
        if verifier in subs:
            subs.remove(verifier)

    def request(self, url: str) -> None:
        """Ask for a refresh of ``url``; returns at once (ignored while one runs or within the interval)."""
        if url in self._inflight:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        now = (self.clock or loop.time)()
        last = self._last.get(url)
        if last is not None and now - last < self.min_interval:
            return
        self._last[url] = now
        self._inflight[url] = loop.create_task(self._fetch(url), name=f"jwks {url}")

    def fetching(self, url: str) -> bool:
        """Whether a fetch of ``url`` is under way."""
        return url in self._inflight

    async def _fetch(self, url: str) -> None:
        try:
            self.fetches[url] = self.fetches.get(url, 0) + 1
            keys = await self._get(url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # JwksError is a ValueError
            log.warning("JWKS fetch from %s failed (keeping the previous keys): %s", url, exc)
            return
        finally:
            self._inflight.pop(url, None)
        self.sets[url] = keys
        for verifier in self._subscribers.get(url, []):
            verifier.set_jwks(keys)
        log.info("JWKS from %s: %d keys", url, len(keys.by_kid) + len(keys.anonymous))

    async def _get(self, url: str) -> JwkSet:
        from graylane.jwt.keyset import MAX_JWKS_BYTES, JwkSet

        if self._session is None:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        async with self._session.get(url, allow_redirects=False) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            body = await resp.content.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
        return JwkSet.from_json(body)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
