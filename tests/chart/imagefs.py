"""A built image as the node would run it: unpack a docker-archive and run its entry point confined.

``unpack(archive, dest)`` applies the layers in order (with OCI whiteouts) and returns the image config.
``confined(rootfs, tmp, config, args)`` is the command that runs the image's entry point (and ``Env``) as
UID/GID 10001 in the unpacked root, bind-mounted read-only in a private mount namespace, with ``tmp`` as its
only writable directory (``/tmp``, the chart's emptyDir) -- what the chart's pod security context asks of a
container runtime (``runAsUser``/``runAsGroup`` 10001, ``readOnlyRootFilesystem``).
"""

from __future__ import annotations

import json
import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import Any

_SANDBOX = """set -e
root=$1; tmp=$2; shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$tmp" "$root/tmp"
exec chroot --userspec=10001:10001 "$root" "$@"
"""


def manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as outer:
        entries = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(entries) == 1, "one image per archive"
    return dict(entries[0])


def unpack(archive: Path, dest: Path) -> dict[str, Any]:
    """Unpack the image in ``archive`` into ``dest``; its config (``config`` holds User, Env, Entrypoint)."""
    entry = manifest(archive)
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # an image's / (a layer's "./" entry, if any, sets it again)
    with tarfile.open(archive) as outer:
        config = json.load(outer.extractfile(entry["Config"]))  # type: ignore[arg-type]
        for layer in entry["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as tar:
                _apply(tar, dest)
    return dict(config)


def _apply(tar: tarfile.TarFile, dest: Path) -> None:
    members = []
    for member in tar:
        parent, base = posixpath.split(posixpath.normpath(member.name))
        if base == ".wh..wh..opq":  # opaque directory: the lower layers' contents are hidden
            for child in (dest / parent).iterdir():
                _remove(child)
        elif base.startswith(".wh."):
            _remove(dest / parent / base.removeprefix(".wh."))
        else:
            members.append(member)
    tar.extractall(dest, members=members, filter="fully_trusted")  # built here, by us


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def confined(
    rootfs: Path, tmp: Path, config: dict[str, Any], args: list[str], *, entrypoint: list[str] | None = None
) -> list[str]:
    """The command running the image's entry point (or ``entrypoint``) with ``args`` instead of ``Cmd``."""
    image = config["config"]
    assert image["User"] == "10001:10001", "the runtime would run the image's user; this runner assumes it"
    entry = ["/usr/bin/env", "-i", *image["Env"], *(entrypoint or image["Entrypoint"]), *args]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SANDBOX, "confined", str(rootfs),
            str(tmp), *entry]  # fmt: skip
