"""File mode: every ``*.json`` in a directory is one route document; changes apply within one second.

The directory is polled (default every 0.25 s) by ``stat`` — mtime, size and inode — so it also works on a
mounted ConfigMap (whose files are symlinks swapped atomically) and on filesystems without inotify. A file
that changed is read and offered to :class:`RouteState`, which ignores identical content (checksum), rejects
a bad document whole and keeps the previous good version of that route. A removed file removes its route.
The secret files the routes refer to (``--secrets-dir``: HS* keys, TLS certificates) are watched the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from graylane.config.document import MAX_DOCUMENT_BYTES

if TYPE_CHECKING:
    from graylane.proxy.routing.state import RouteState

log = logging.getLogger("graylane.proxy")

Stamp = tuple[int, int, int]


class DirectorySource:
    def __init__(self, *, directory: Path, state: RouteState, interval: float = 0.25) -> None:
        self.directory = directory
        self.state = state
        self.interval = interval
        self._stamps: dict[str, Stamp] = {}

    def scan(self) -> bool:
        """Look once; offer what changed; True when the table changed."""
        seen: dict[str, Stamp] = {}
        changes: dict[str, bytes | None] = {}
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            log.warning("cannot list %s: %s", self.directory, exc)
            return False
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = self.directory / name
            try:
                st = path.stat()
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            seen[name] = stamp
            if self._stamps.get(name) != stamp:
                changes[name] = _read(path)
        for name in self._stamps.keys() - seen.keys():
            changes[name] = None
        self._stamps = seen
        changed = self.state.apply(changes) if changes else False
        if self.state.verifiers.secrets.refresh_files():  # HS* secrets (--secrets-dir) changed
            changed = self.state.rebuild() or changed
        if self.state.tls is not None and self.state.tls.secrets.refresh_files():  # certificates changed
            self.state.tls.reload()
        if self.state.table is None:  # an empty directory is a valid (empty) table
            changed = self.state.rebuild()
        self.state.synced = True
        return changed

    async def run(self) -> None:
        while True:
            self.scan()
            await asyncio.sleep(self.interval)


def _read(path: Path) -> bytes:
    """The file's bytes; an unreadable or oversized file reads as b"" (which the loader rejects)."""
    try:
        with path.open("rb") as fh:
            return fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError:
        return b""
