"""Load a certificate chain and its private key from memory into an ``ssl.SSLContext``.

``SSLContext.load_cert_chain`` reads files only. The PEMs go into anonymous memory files (``memfd``, Linux)
read through ``/proc/self/fd``: the key never touches a filesystem. Without ``memfd`` (or ``/proc``) they go
into a private temporary directory (mode 0700, files 0600) that is removed right after.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path


def load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    with _files(cert, key) as (cert_path, key_path):
        ctx.load_cert_chain(cert_path, key_path)


@contextlib.contextmanager
def _files(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("tls.crt", "tls.key")]
        try:
            for fd, data in zip(fds, (cert, key), strict=True):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="graylane-pem-") as tmp:
        paths = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        for path, data in zip(paths, (cert, key), strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        yield str(paths[0]), str(paths[1])
