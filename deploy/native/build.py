"""Compile the data plane's hot path with mypyc (``make native``, run by ``make install``).

The request path (the fast server, the handler, the upstream client, the header work, and the core's
``decide``/matchers/request view/sticky hash) is plain, fully typed Python. mypyc compiles those modules
to C extensions that CPython imports instead of the ``.py`` files next to them; the code and its tests
stay the same, and the proxy does the same work with about 45 % fewer CPU instructions per request
(see ``proxy/README.md``). Everything else (operator, CLIs, the rest of the core) stays interpreted.

* ``graylane.proxy`` lives in ``proxy/`` through setuptools ``package-dir``, which mypyc cannot follow, so
  the build runs in a staging tree (``build/native/stage/graylane/{**/*.py,proxy/**/*.py}``, symlinks) and the
  resulting ``.so`` files are copied next to their sources (under ``graylane/``, ``proxy/``; git-ignored).
* A stamp (hash of the compiled sources, Python and mypy versions) skips the ~1 minute compile when
  nothing changed; ``tests/conftest.py`` refuses to run against stale extensions.
* ``GRAYLANE_NATIVE=0`` (or ``--pure``) removes the extensions: the interpreted modules take over.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "native"
STAMP_NAME = "native.stamp"
GROUP = "graylane._native"

# (package directory in the repository, package name, modules under it) compiled together as one group.
COMPILED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "graylane",
        "graylane",
        (
            "routing.decide", "routing.entries", "routing.hosts", "routing.httprules", "routing.matchers",
            "routing.mirror", "routing.ports", "routing.prefixes", "routing.request", "routing.sticky",
            "routing.table",
        ),
    ),
    (
        "proxy",
        "graylane.proxy",
        (
            "answers", "deadlines", "metrics", "request", "target",
            "mirror.canary", "mirror.shadow",
            "routing.clientaddr", "routing.handler", "routing.jwtclaims", "routing.pools", "routing.state",
            "routing.targets", "routing.updates",
            "server.connection", "server.head",
            "upstream.client", "upstream.forward", "upstream.headers", "upstream.pool",
        ),
    ),
)  # fmt: skip


def sources() -> list[Path]:
    return [ROOT / folder / f"{_path(name)}.py" for folder, _, names in COMPILED for name in names]


def _path(dotted: str) -> str:
    return dotted.replace(".", "/")


def fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update(_mypy_version().encode())
    for path in sources():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stamp_path() -> Path:
    return ROOT / "graylane" / STAMP_NAME


def built_files() -> list[Path]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    files = [ROOT / folder / f"{_path(name)}{suffix}" for folder, _, names in COMPILED for name in names]
    return [*files, ROOT / "graylane" / f"_native__mypyc{suffix}"]


def is_current() -> bool:
    stamp = stamp_path()
    return (
        stamp.exists()
        and stamp.read_text().strip() == fingerprint()
        and all(path.exists() for path in built_files())
    )


def remove() -> None:
    """Every extension in the two source folders (also of modules no longer compiled) and the stamp."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for folder in {folder for folder, _, _ in COMPILED}:
        for path in (ROOT / folder).rglob(f"*{suffix}"):
            path.unlink()
    stamp_path().unlink(missing_ok=True)


def build() -> None:
    stage = BUILD / "stage"
    shutil.rmtree(BUILD, ignore_errors=True)
    (stage / "graylane" / "proxy").mkdir(parents=True)
    for folder, package, _ in COMPILED:  # the staging tree: real folders, every module as a symlink
        target = stage / Path(*package.split("."))
        for path in (ROOT / folder).rglob("*.py"):
            (target / path.relative_to(ROOT / folder)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(ROOT / folder)).symlink_to(path)
    paths = [f"{_path(package)}/{_path(name)}.py" for _, package, names in COMPILED for name in names]
    setup = (
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n"
        f"setup(name='graylane-native', ext_modules=mypycify({['--ignore-missing-imports', *paths]!r}, "
        f"opt_level='3', group_name={GROUP!r}))\n"
    )
    (stage / "setup_native.py").write_text(setup)
    subprocess.run(
        [sys.executable, "setup_native.py", "build_ext", "--inplace", "--build-temp", str(BUILD / "tmp")],
        cwd=stage,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for folder, package, names in COMPILED:
        built = stage / Path(*package.split("."))
        for name in names:
            shutil.copy2(built / f"{_path(name)}{suffix}", ROOT / folder / f"{_path(name)}{suffix}")
    shutil.copy2(
        stage / "graylane" / f"_native__mypyc{suffix}", ROOT / "graylane" / f"_native__mypyc{suffix}"
    )
    stamp_path().write_text(fingerprint() + "\n")


def _mypy_version() -> str:
    try:
        from mypy.version import __version__
    except ImportError:
        return "none"
    return str(__version__)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pure", action="store_true", help="remove the compiled modules (interpreted only)")
    ap.add_argument("--check", action="store_true", help="exit 1 when compiled modules exist but are stale")
    args = ap.parse_args()
    if args.check:
        stale = any(path.exists() for path in built_files()) and not is_current()
        return 1 if stale else 0
    if args.pure or os.environ.get("GRAYLANE_NATIVE") == "0":
        remove()
        print("native: interpreted modules only (compiled extensions removed)")
        return 0
    if is_current():
        print("native: compiled modules are up to date")
        return 0
    remove()
    print("native: compiling the hot path with mypyc (about a minute)...", flush=True)
    build()
    print(f"native: {len(built_files()) - 1} modules compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
