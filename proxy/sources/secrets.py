"""HS* secrets for ``jwt.secretRef`` — never in the route document, read where the operator put them.

* Kube mode: the operator mirrors each secret into an operator-owned Secret in the install namespace; the
  proxy GETs it through the API (``data[key]``, base64) from the namespaces it watches, re-reads every
  ``REFRESH_SECONDS`` and rebuilds the table when a value changes.
* File mode: ``--jwt-secret-dir DIR`` holds ``DIR/<secret name>/<key>`` (a mounted Secret volume; the
  operator's mirrored Secret is named ``graylane-jwt-<route namespace>-<route name>``, hash-shortened when
  long, which is the ``secretRef.name`` in the route document). Polled with the route files: a changed,
  new or removed file rebuilds the table (``DirectorySource.scan`` -> :meth:`SecretStore.refresh_files`).

Until a secret is known, the route's HS* tokens fail as ``no-key`` ("no claims"), never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from pathlib import Path

import aiohttp
from graylane.proxy.sources.kubeconfig import ApiAccess

from graylane.config.model import SecretRef

log = logging.getLogger("graylane.proxy")

REFRESH_SECONDS = 60.0
MAX_SECRET_BYTES = 64 * 1024


class SecretStore:
    """Secret values by reference; ``get`` never does I/O."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
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
        if 0 < len(data) <= MAX_SECRET_BYTES:
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
            encoded = (body.get("data") or {}).get(ref.key)
            if not isinstance(encoded, str):
                continue
            try:
                value = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                continue
            if 0 < len(value) <= MAX_SECRET_BYTES:
                return value
        log.warning("secret %s (key %s) not found in %s", ref.name, ref.key, ", ".join(namespaces))
        return None
