"""File mode: every ``*.json`` in a directory is one route document; a change is served within milliseconds.

Where Linux inotify works (:mod:`.inotify`), a changed file is read as soon as the kernel says so; the whole
directory is still compared by ``stat`` (mtime, size, inode) every ``RESCAN_TICKS`` polls as a safety net.
Without inotify the directory is polled (default every 0.25 s) by ``stat``. Either way it works on a mounted
ConfigMap (whose files are symlinks swapped atomically: the swap of ``..data`` triggers a full compare).
A file that changed is read and offered to :class:`RouteState` through its coalescing
:class:`~graylane.proxy.routing.updates.Updates`: identical content is ignored (checksum), a bad document
is rejected whole and the previous good version of that route keeps serving, a removed file removes its
route. The secret files the routes refer to (``--secrets-dir``: HS* keys, TLS certificates) are polled every
``interval``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from graylane.proxy.sources.inotify import DirectoryWatch, watch_directory

from graylane.config.document import MAX_DOCUMENT_BYTES

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RouteState

log = logging.getLogger("graylane.proxy")

Stamp = tuple[int, int, int]
RESCAN_TICKS = 20  # with inotify: compare the whole directory every 20 polls (5 s at the default 0.25 s)
CHUNK = 256  # documents read and applied together by the first scan
DEBOUNCE = 0.01  # after inotify wakes the source: gather the rest of a burst before reading


class DirectorySource:
    def __init__(self, *, directory: Path, state: RouteState, interval: float = 0.25) -> None:
        self.directory = directory
        self.state = state
        self.interval = interval
        self._stamps: dict[str, Stamp] = {}

    def scan(self) -> bool:
        """Look at every file once and apply what changed now (the first table, before the listener opens),
        ``CHUNK`` files at a time so that 10,000 documents never sit in memory at once; True when the table
        changed."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            log.warning("cannot list %s: %s", self.directory, exc)
            return False  # not synced: not ready until the directory can be read
        changed = False
        for start in range(0, len(names), CHUNK):
            changes = self._compare(names[start : start + CHUNK])
            changed = (self.state.apply(changes) if changes else False) or changed
        for name in self._stamps.keys() - set(names):  # gone since an earlier scan
            del self._stamps[name]
            changed = self.state.apply({name: None}) or changed
        changed = self._secrets() or changed
        self.state.synced = True
        return changed

    async def run(self) -> None:
        watch = watch_directory(self.directory)
        woken = asyncio.Event()
        if watch is not None:
            asyncio.get_running_loop().add_reader(watch.fileno(), woken.set)
        try:
            await self._follow(watch, woken)
        finally:
            if watch is not None:
                asyncio.get_running_loop().remove_reader(watch.fileno())
                watch.close()

    async def _follow(self, watch: DirectoryWatch | None, woken: asyncio.Event) -> None:
        ticks = 0
        while True:
            try:
                await asyncio.wait_for(woken.wait(), self.interval)
                await asyncio.sleep(DEBOUNCE)  # a burst of writes lands as one read of each file
            except TimeoutError:
                ticks += 1
            woken.clear()
            names = watch.read() if watch is not None else None
            if watch is None or names is None or ticks >= RESCAN_TICKS:
                ticks = 0
                self._offer(self._compare(None))
            elif names:
                self._offer(self._compare(names))
            self._secrets()

    def _compare(self, names: Iterable[str] | None) -> dict[str, bytes | None]:
        """The documents that changed among ``names`` (None: the whole directory); ``None`` = removed."""
        full = names is None
        if names is None:
            try:
                names = os.listdir(self.directory)
            except OSError as exc:
                log.warning("cannot list %s: %s", self.directory, exc)
                return {}
        seen: dict[str, Stamp] = {}
        changes: dict[str, bytes | None] = {}
        for name in sorted(names):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                st = (self.directory / name).stat()
            except OSError:
                if not full and name in self._stamps:
                    del self._stamps[name]
                    changes[name] = None
                continue
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            seen[name] = stamp
            if self._stamps.get(name) != stamp:
                changes[name] = _read(self.directory / name)
        if full:
            for name in self._stamps.keys() - seen.keys():
                changes[name] = None
            self._stamps = seen
        else:
            self._stamps.update(seen)
        return changes

    def _offer(self, changes: dict[str, bytes | None]) -> None:
        for name, raw in changes.items():
            self.state.updates.offer(name, raw)

    def _secrets(self) -> bool:
        """Follow the secret files: HS* keys re-plan the routes that read them, certificates reload the
        store; True when a route's plan changed."""
        changed = False
        if self.state.verifiers.secrets.refresh_files():  # HS* secrets (--secrets-dir) changed
            changed = self.state.rebuild()
        if self.state.tls is not None and self.state.tls.secrets.refresh_files():  # certificates changed
            self.state.tls.reload()
        return changed


def _read(path: Path) -> bytes:
    """The file's bytes; an unreadable or oversized file reads as b"" (which the loader rejects)."""
    try:
        with path.open("rb") as fh:
            return fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError:
        return b""
