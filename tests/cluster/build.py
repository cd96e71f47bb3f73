"""Build (or reuse) the test control-plane binary: kube-apiserver + kube-controller-manager + etcd.

One multi-call binary is built from the Go module in this directory (``go.mod``, ``go.sum``,
``main.go``). The binary, the Go module cache and the Go build cache live under
``${XDG_CACHE_HOME:-~/.cache}/graylane/k8s-v<version>/`` (version: env ``GRAYLANE_K8S_VERSION``,
default 1.35.4). A stamp next to the binary holds a hash of the module files, the Go version and the
link flags; a matching stamp skips the build.

CLI: ``python tests/cluster/build.py [--check]`` prints the path of the binary (``--check``: do not
build, exit 1 when the binary is missing or stale). Library: :func:`ensure_binary`, :func:`binary_path`.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent
MODULE_FILES = ("go.mod", "go.sum", "main.go")
DEFAULT_K8S_VERSION = "1.35.4"
BINARY_NAME = "graylane-testcluster"


class BuildError(RuntimeError):
    """The control-plane binary could not be built (or is missing and building was not allowed)."""


def k8s_version() -> str:
    return os.environ.get("GRAYLANE_K8S_VERSION", DEFAULT_K8S_VERSION).removeprefix("v")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graylane"


def cache_dir(version: str | None = None) -> Path:
    return cache_root() / f"k8s-v{version or k8s_version()}"


def binary_path(version: str | None = None) -> Path:
    """Where the binary for ``version`` lives (it may not exist yet)."""
    override = os.environ.get("GRAYLANE_TESTCLUSTER_BINARY")
    if override:
        return Path(override)
    return cache_dir(version) / "bin" / BINARY_NAME


def _ldflags(version: str) -> str:
    major, minor = version.split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _go() -> str:
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists() and not shutil.which(found):
        raise BuildError("no Go toolchain: put `go` (1.25+) on PATH or set GO=/path/to/go")
    return found


def _go_env(version: str) -> dict[str, str]:
    cache = cache_dir(version)
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(cache / "gomod"),
        GOCACHE=str(cache / "gocache"),
        GOTOOLCHAIN="local",
        GOFLAGS="-buildvcs=false -mod=readonly",
        CGO_ENABLED="0",
        GOWORK="off",
    )
    return env


def stamp(version: str, go: str) -> str:
    """The hash that identifies one build: module files, Go version and link flags."""
    digest = hashlib.sha256()
    for name in MODULE_FILES:
        digest.update(name.encode() + b"\0" + (MODULE_DIR / name).read_bytes() + b"\0")
    go_version = subprocess.run(
        [go, "version"], check=True, capture_output=True, text=True, env=_go_env(version)
    ).stdout.strip()
    digest.update(go_version.encode() + b"\0" + _ldflags(version).encode())
    return digest.hexdigest()


def _stamp_file(binary: Path) -> Path:
    return binary.with_name(binary.name + ".stamp")


def is_current(version: str | None = None) -> bool:
    """True when the binary exists and was built from the current module files."""
    version = version or k8s_version()
    binary = binary_path(version)
    if os.environ.get("GRAYLANE_TESTCLUSTER_BINARY"):
        return binary.is_file()
    stamp_file = _stamp_file(binary)
    if not (binary.is_file() and stamp_file.is_file()):
        return False
    return stamp_file.read_text().strip() == stamp(version, _go())


def _build(version: str, binary: Path, go: str) -> None:
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(binary.name + f".tmp{os.getpid()}")
    cmd = [go, "build", "-trimpath", "-ldflags", _ldflags(version), "-o", str(tmp), "."]
    print(f"build.py: building the control plane (k8s v{version}) into {binary}", file=sys.stderr)
    print(
        "build.py: a cold build takes ~5-10 min on 2 cores (peak RSS ~2 GiB); later builds reuse the cache",
        file=sys.stderr,
    )
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=MODULE_DIR, env=_go_env(version), check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"go build failed with exit code {result.returncode}: {' '.join(cmd)}")
    tmp.replace(binary)
    print(f"build.py: built in {time.monotonic() - started:.0f}s", file=sys.stderr)


def ensure_binary(*, version: str | None = None, build: bool = True) -> Path:
    """Return the path of a current binary, building it first if needed (and allowed).

    Concurrent callers are serialised by a lock file in the cache directory.
    Raises :class:`BuildError` when the build fails, or when ``build`` is false and the binary is
    missing or stale.
    """
    version = version or k8s_version()
    binary = binary_path(version)
    if os.environ.get("GRAYLANE_TESTCLUSTER_BINARY"):
        if not binary.is_file():
            raise BuildError(f"GRAYLANE_TESTCLUSTER_BINARY={binary} does not exist")
        return binary
    go = _go()
    cache_dir(version).mkdir(parents=True, exist_ok=True)
    with open(cache_dir(version) / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = stamp(version, go)
        stamp_file = _stamp_file(binary)
        if binary.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == wanted:
            return binary
        if not build:
            raise BuildError(
                f"the control-plane binary {binary} is missing or stale; run `make controlplane` "
                "(or `python tests/cluster/build.py`) first"
            )
        _build(version, binary, go)
        stamp_file.write_text(wanted + "\n")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="do not build; fail if missing or stale")
    args = parser.parse_args(argv)
    try:
        binary = ensure_binary(build=not args.check)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
