"""Linux inotify on one directory, through ctypes (no dependency): which entries changed since last asked.

File mode uses it to see a changed route file at once instead of at the next poll, and to stop stat-ing
10,000 files four times a second. Where inotify is missing (another OS, a container without it, the
per-user watch limit reached) :func:`watch_directory` returns ``None`` and the source keeps polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger("graylane.proxy")

IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x4, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
MASK = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
EVERYTHING = IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF  # the names no longer tell: rescan
_HEAD = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of NUL-padded name)


class DirectoryWatch:
    """An inotify descriptor watching one directory; :meth:`read` drains it without blocking."""

    def __init__(self, fd: int, directory: Path) -> None:
        self.fd = fd
        self.directory = directory

    def _is_link(self, name: str) -> bool:
        return (self.directory / name).is_symlink()

    def fileno(self) -> int:
        return self.fd

    def read(self) -> set[str] | None:
        """Names of entries that changed since the last call (maybe none); ``None``: rescan everything.
        A regular file that was only created is left out: it is still being written, and its
        ``IN_CLOSE_WRITE`` follows (a symlink has no such event, so a created symlink is in)."""
        names: dict[str, int] = {}
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return {name for name, mask in names.items() if mask != IN_CREATE or self._is_link(name)}
            if not data:
                return set(names)
            offset = 0
            while offset + _HEAD.size <= len(data):
                _, mask, _, size = _HEAD.unpack_from(data, offset)
                raw = data[offset + _HEAD.size : offset + _HEAD.size + size]
                offset += _HEAD.size + size
                if mask & EVERYTHING:
                    return None
                name = os.fsdecode(raw.rstrip(b"\0"))
                names[name] = names.get(name, 0) | mask

    def close(self) -> None:
        os.close(self.fd)


def watch_directory(directory: Path) -> DirectoryWatch | None:
    """A watch on ``directory``, or ``None`` where inotify is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    fd = init(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        log.info(
            "inotify unavailable (%s): polling %s", errno.errorcode.get(ctypes.get_errno(), "?"), directory
        )
        return None
    if add(fd, os.fsencode(directory), MASK) < 0:
        log.info("cannot watch %s (%s): polling", directory, errno.errorcode.get(ctypes.get_errno(), "?"))
        os.close(fd)
        return None
    return DirectoryWatch(fd, directory)
