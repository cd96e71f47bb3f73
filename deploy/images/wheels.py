"""Wheels the host downloads so that the image build needs no package index.

Inside the build container PyPI is not usable here: the container has its own CA store (Debian's), and a
build must not depend on the network anyway. So the host resolves and downloads, with its own pip and
network, every wheel the Dockerfiles' ``pip install`` steps need, for the image's Python and platform:

* the project's ``dependencies`` and its ``build-system.requires`` (pip builds Graylane from source),
* every name a Dockerfile installs explicitly (``pip install mypy setuptools`` in the proxy's native build,
  ``aiohttp`` in the demo backend).

The set is downloaded once per requirement list (keyed by its hash) into
``${XDG_CACHE_HOME:-~/.cache}/graylane/images/wheels/<key>/`` and reused; a new requirement downloads a new
set. The build base (``base.py``) carries ``/etc/pip.conf`` with ``no-index = true`` and
``find-links = /mnt``, and the builder mounts the wheel directory read-only at ``/mnt``; so the Dockerfiles'
``pip install`` steps run unchanged and find everything there.

By hand (any builder that can bind-mount, e.g. ``buildah build -v``)::

    pip download --dest wheels --only-binary=:all: --python-version 3.11 --implementation cp \\
        --abi cp311 --abi abi3 --abi none --platform manylinux_2_36_x86_64 ... -r requirements
    buildah build --from <build base> -v $PWD/wheels:/mnt:ro ...
"""

from __future__ import annotations

import hashlib
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

GLIBC_MINOR = 36  # Debian 12's glibc 2.36: every manylinux_2_x wheel with x <= 36 runs in the image
_PIP_INSTALL = re.compile(r"pip install ([^&\\\n]*)")


def dockerfile_requirements(text: str) -> list[str]:
    """The package names a Dockerfile's ``pip install`` commands name (options and ``.`` left out)."""
    names: list[str] = []
    for args in _PIP_INSTALL.findall(text):
        names.extend(t for t in shlex.split(args) if not t.startswith("-") and t != ".")
    return names


def project_requirements(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    return [*data["project"]["dependencies"], *data["build-system"]["requires"]]


def platform_args(python: str) -> list[str]:
    """pip's target options for CPython ``python`` (e.g. "3.11") on this machine's architecture."""
    arch = platform.machine()
    abi = "cp" + python.replace(".", "")
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(5, GLIBC_MINOR + 1)]
    tags += [f"manylinux{legacy}_{arch}" for legacy in ("1", "2010", "2014")]
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    for value in (abi, "abi3", "none"):
        args += ["--abi", value]
    for tag in tags:
        args += ["--platform", tag]
    return args


def wheel_dir(cache: Path, requirements: list[str], python: str) -> Path:
    key = hashlib.sha256("\n".join([python, *platform_args(python), *sorted(requirements)]).encode())
    return cache / "wheels" / key.hexdigest()[:16]


def ensure_wheels(*, cache: Path, requirements: list[str], python: str) -> Path:
    """The wheel directory for ``requirements`` (downloaded by the host's pip unless already complete)."""
    dest = wheel_dir(cache, requirements, python)
    if (dest / ".complete").exists():
        return dest
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--dest", str(partial), *platform_args(python)]
    subprocess.run([*cmd, *sorted(requirements)], check=True)
    (partial / ".complete").write_text("\n".join(sorted(requirements)) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    for old in dest.parent.iterdir():  # one set is kept: the cache does not grow with every change
        if old != dest:
            shutil.rmtree(old, ignore_errors=True)
    return dest


def wheelset_digest(directory: Path) -> str:
    """sha256 over the names and contents of the wheels (part of every image's cache key)."""
    h = hashlib.sha256()
    for path in sorted(directory.glob("*.whl")):
        h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
