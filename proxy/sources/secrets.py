"""Secrets the route documents name — never in the documents, read where the operator put them: HS* keys
for ``jwt.secretRef`` and ``kubernetes.io/tls`` certificates for ``tls.secretName`` (one
:class:`SecretStore` each, filled the same way).

* File mode: ``--secrets-dir DIR`` holds ``DIR/<secret name>/<key>`` (a mounted Secret volume: the
  operator's mirrors are ``graylane-jwt-<route namespace>-<route name>`` and ``graylane-tls-...``,
  hash-shortened when long, the names in the route document; a certificate is ``DIR/<name>/tls.crt`` and
  ``tls.key``). Polled with the route files: a changed, new or removed file counts as a change
  (``DirectorySource.scan`` -> :meth:`SecretStore.refresh_files`).
* Kube mode, HS* keys: the proxy GETs each mirrored Secret through the API (``data[key]``, base64) from the
  namespaces it watches, re-reads every ``REFRESH_SECONDS`` and rebuilds the table when a value changes.
* Kube mode, certificates: :class:`TlsSecrets` is fed by the list and watch of the ``kubernetes.io/tls``
  Secrets of the watched namespaces (``kube.py``), so a rotated certificate is in the store within a second.

Until an HS* key is known, the route's HS* tokens fail as ``no-key`` ("no claims"), never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from graylane.proxy.sources.kubeconfig import ApiAccess

from graylane.config.model import SecretRef

log = logging.getLogger("graylane.proxy")

REFRESH_SECONDS = 60.0
MAX_SECRET_BYTES = 64 * 1024


class SecretStore:
    """Secret values by reference; ``get`` never does I/O."""

    def __init__(self, directory: Path | None = None, *, allow_empty: bool = False) -> None:
        self.directory = directory
        self.allow_empty = allow_empty  # an empty file is a value (a certificate: malformed), not a gap
        self.values: dict[SecretRef, bytes] = {}
        self.wanted: set[SecretRef] = set()
        self._stamps: dict[SecretRef, tuple[int, int, int] | None] = {}

    def refresh_files(self) -> bool:
        """File mode: re-read every wanted secret whose file changed (mtime, size, inode, following the
        symlinks of a mounted Secret); True when a value changed, appeared or went away."""
        if self.directory is None:
            return False
        changed = False
        for ref in list(self.wanted):
            path = self.directory / ref.name / ref.key
            try:
                st = path.stat()
                stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if ref in self._stamps and self._stamps[ref] == stamp:
                continue
            self._stamps[ref] = stamp
            before = self.values.pop(ref, None)
            if stamp is not None:
                self._read_file(ref)
            changed |= self.values.get(ref) != before
        return changed

    def get(self, ref: SecretRef) -> bytes | None:
        self.wanted.add(ref)
        if ref not in self.values and self.directory is not None:
            self._read_file(ref)
        return self.values.get(ref)

    def _read_file(self, ref: SecretRef) -> None:
        assert self.directory is not None
        path = self.directory / ref.name / ref.key
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_SECRET_BYTES + 1)
        except OSError:
            return
        if (data or self.allow_empty) and len(data) <= MAX_SECRET_BYTES:
            self.values[ref] = data


class KubeSecrets:
    """Keeps :class:`SecretStore` filled from the API for every reference the verifiers asked for."""

    def __init__(self, store: SecretStore, *, on_change: Callable[[], object]) -> None:
        self.store = store
        self.on_change = on_change

    async def run(
        self, session: aiohttp.ClientSession, access: ApiAccess, namespaces: tuple[str, ...]
    ) -> None:
        fetched: set[SecretRef] = set()
        loop = asyncio.get_running_loop()
        last_full = loop.time()
        while True:
            full = loop.time() - last_full > REFRESH_SECONDS
            todo = set(self.store.wanted) if full else self.store.wanted - fetched
            if full:
                last_full = loop.time()
            changed = False
            for ref in todo:
                value = await self._fetch(session, access, namespaces, ref)
                fetched.add(ref)
                if value is not None and self.store.values.get(ref) != value:
                    self.store.values[ref] = value
                    changed = True
            if changed:
                self.on_change()
            await asyncio.sleep(1.0)

    async def _fetch(
        self, session: aiohttp.ClientSession, access: ApiAccess, namespaces: tuple[str, ...], ref: SecretRef
    ) -> bytes | None:
        for ns in namespaces:
            url = f"{access.server}/api/v1/namespaces/{ns}/secrets/{ref.name}"
            try:
                async with session.get(url, headers=access.headers()) as resp:
                    if resp.status != 200:
                        continue
                    body = await resp.json()
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.warning("cannot read secret %s/%s: %s", ns, ref.name, exc)
                continue
            value = decoded((body.get("data") or {}).get(ref.key))
            if value is not None:
                return value
        log.warning("secret %s (key %s) not found in %s", ref.name, ref.key, ", ".join(namespaces))
        return None


def decoded(encoded: Any, *, allow_empty: bool = False) -> bytes | None:
    """A Secret's ``data`` value: its bytes, or None when missing, not base64, too large or (unless
    ``allow_empty``) empty."""
    if not isinstance(encoded, str):
        return None
    try:
        value = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return value if (value or allow_empty) and len(value) <= MAX_SECRET_BYTES else None


class TlsSecrets:
    """Kube mode: the ``kubernetes.io/tls`` Secrets of the watched namespaces into a :class:`SecretStore`
    (``tls.crt``, ``tls.key`` by Secret name), through ``kube.py``'s list + watch (``feeds.NamedFeed``)."""

    SELECTOR = "type=kubernetes.io/tls"
    KEYS = ("tls.crt", "tls.key")

    def __init__(self, store: SecretStore, *, on_change: Callable[[], object]) -> None:
        self.store = store
        self.on_change = on_change

    def put(self, ns: str, name: str, obj: dict[str, Any]) -> None:
        data = obj.get("data") or {}
        for key in self.KEYS:
            value = decoded(data.get(key), allow_empty=True)
            if value is None:
                self.store.values.pop(SecretRef(name, key), None)
            else:
                self.store.values[SecretRef(name, key)] = value

    def drop(self, ns: str, name: str) -> None:
        for key in self.KEYS:
            self.store.values.pop(SecretRef(name, key), None)

    def flush(self) -> None:
        self.on_change()
