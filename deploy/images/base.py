"""The Debian bases that stand in for ``python:3.12-slim-bookworm`` (which cannot be pulled here).

* **runtime base** ``localhost/graylane-python-base:<key>``: ``debootstrap --variant=minbase bookworm`` plus
  ``python3``, ``python-is-python3`` and ``ca-certificates``, upgraded from bookworm-updates and
  bookworm-security, without docs, man pages, locales or apt lists, and with no pip (Debian's ``python3`` has
  none). Python is Debian 12's 3.11; Graylane supports 3.11 and later. Passed to every Dockerfile through its
  ``PYTHON_IMAGE`` argument, so the final stages are built on it.
* **build base** ``localhost/graylane-python-build:<key>``: the runtime base plus what the Dockerfiles' build
  stages get from the upstream image or from apt: ``python3-venv`` (pip for the venvs), ``python3-dev`` (the
  headers mypyc compiles against), ``gcc`` and ``libc6-dev``. Its apt has no sources left (the proxy's
  ``apt-get update && apt-get install gcc libc6-dev`` step then finds everything installed and fetches
  nothing) and its ``/etc/pip.conf`` points pip at the host-downloaded wheels mounted at ``/mnt``
  (``wheels.py``). It replaces the first ``FROM`` only (``buildah build --from``): the build stages. The
  compiler never reaches a final image.

The packages come from the Debian mirror this machine's apt uses. Each base is built once per recipe (the
key hashes the package lists and steps) and kept in the builder's storage; older keys are removed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from images.builders import Buildah, run_logged
from images.progress import phase

RECIPE_VERSION = 1
SUITE = "bookworm"
PYTHON = "3.11"  # Debian 12's python3
RUNTIME_PACKAGES = ("python3", "python-is-python3", "ca-certificates")
BUILD_PACKAGES = ("python3-venv", "python3-dev", "gcc", "libc6-dev")
BASE_REPO = "localhost/graylane-python-base"
BUILD_REPO = "localhost/graylane-python-build"
PIP_CONF = "[global]\nno-index = true\nfind-links = /mnt\n"

# Keep later package installs small as well (the build base's), like Debian's slim images do.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
CLEANUP = (
    "apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/*"
    " /usr/share/man /usr/share/info /usr/share/lintian"
    " && find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete"
    " && find /usr/share/doc -mindepth 1 -type d -empty -delete"
    " && find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +"
)  # /etc/resolv.conf is the host's bind mount during `buildah run`: it is reset from outside (_finish)
APT_INSTALL = (
    "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
)
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")


@dataclass(frozen=True)
class Bases:
    base: str
    build_base: str


def mirrors(apt_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """The Debian and Debian-security mirrors this machine's apt uses (deb.debian.org when none is found)."""
    texts = [p.read_text() for p in [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*"))]
             if p.is_file()]  # fmt: skip
    uris = re.findall(r"(?:^deb\s+(?:\[[^]]*\]\s+)?|^URIs:\s*)(\S+)", "\n".join(texts), re.MULTILINE)
    main = [u.rstrip("/") for u in uris if u.rstrip("/").endswith("/debian")]
    security = [u.rstrip("/") for u in uris if u.rstrip("/").endswith("/debian-security")]
    return (main or ["http://deb.debian.org/debian"])[0], (
        security or ["http://deb.debian.org/debian-security"]
    )[0]


def sources_list(main: str, security: str) -> str:
    return f"deb {main} {SUITE} main\ndeb {main} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n"


def recipe_key() -> str:
    """Hash of what the bases are made of; bump RECIPE_VERSION when the steps below change what they make."""
    recipe = [
        RECIPE_VERSION,
        SUITE,
        *RUNTIME_PACKAGES,
        "|",
        *BUILD_PACKAGES,
        DPKG_EXCLUDES,
        CLEANUP,
        PIP_CONF,
        *ENV,
    ]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


def ensure_bases(buildah: Buildah, *, logs: Path) -> Bases:
    key = recipe_key()
    bases = Bases(f"{BASE_REPO}:{key}", f"{BUILD_REPO}:{key}")
    if not buildah.has_image(bases.base):
        with phase(f"runtime base {bases.base} (debootstrap {SUITE}; log {logs / 'base.log'})"):
            _runtime_base(buildah, bases.base, log=logs / "base.log")
    if not buildah.has_image(bases.build_base):
        with phase(f"build base {bases.build_base} (log {logs / 'build-base.log'})"):
            _build_base(buildah, bases.base, bases.build_base, log=logs / "build-base.log")
    buildah.drop_other_tags(BASE_REPO, bases.base)
    buildah.drop_other_tags(BUILD_REPO, bases.build_base)
    return bases


def _runtime_base(buildah: Buildah, ref: str, *, log: Path) -> None:
    main, security = mirrors()
    container = buildah("from", "scratch").strip()
    try:
        root = Path(buildah("mount", container).strip())
        include = ",".join(RUNTIME_PACKAGES)
        run_logged(
            ["debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(root), main], log=log
        )
        (root / "etc/dpkg/dpkg.cfg.d/excludes").write_text(DPKG_EXCLUDES)
        (root / "etc/apt/sources.list").write_text(sources_list(main, security))
        upgrade = "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -q"
        _run_in(buildah, container, f"{upgrade} && {CLEANUP}", log=log)
        _finish(root)
        for env in ENV:
            buildah("config", "--env", env, container)
        buildah("config", "--cmd", "python3", container)
        buildah("commit", "--rm", container, ref, log=log)
    except BaseException:
        buildah("rm", container)
        raise


def _build_base(buildah: Buildah, base: str, ref: str, *, log: Path) -> None:
    container = buildah("from", "--pull=never", base).strip()
    try:
        _run_in(buildah, container, f"{APT_INSTALL} {' '.join(BUILD_PACKAGES)} && {CLEANUP}", log=log)
        root = Path(buildah("mount", container).strip())
        _finish(root)
        (root / "etc/apt/sources.list").write_text("")  # nothing to fetch: the build stages run offline
        (root / "etc/pip.conf").write_text(PIP_CONF)
        buildah("commit", "--rm", container, ref, log=log)
    except BaseException:
        buildah("rm", container)
        raise


def _run_in(buildah: Buildah, container: str, script: str, *, log: Path) -> None:
    """A shell script in the working container, with the host's network (apt reaches the Debian mirror)."""
    buildah("run", "--isolation", "chroot", "--network", "host", container, "--", "sh", "-c", script, log=log)


def _finish(root: Path) -> None:
    """What debootstrap copied from the host is not part of an image: the runtime provides both files."""
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
