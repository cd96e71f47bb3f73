"""Build a Go program once and reuse it: one cache scheme for every Go binary of the test cluster.

A :class:`GoProgram` names a Go module directory, the files that define the build, a cache directory
(``GOMODCACHE``/``GOCACHE`` live there, the binary in ``bin/``), the package to build and link flags.
The binary's file name carries a hash of those files, the Go version and the flags
(``bin/<name>-<hash>``), so a binary that exists is current, and trees with different sources (other
worktrees) never overwrite each other's binary. Builds run with ``GOTOOLCHAIN=local``,
``CGO_ENABLED=0`` and ``-mod=readonly``;
concurrent callers are serialised by a lock file in the cache directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class BuildError(RuntimeError):
    """A binary could not be built (or is missing and building was not allowed)."""


@dataclass(frozen=True)
class GoProgram:
    name: str  # the binary's file name
    module_dir: Path
    files: tuple[str, ...]  # relative to module_dir; their content keys the stamp
    cache: Path
    package: str = "."
    ldflags: str = "-s -w"
    hint: str = ""  # printed before a build (how long it takes)
    test: bool = False  # a test binary (``go test -c``) instead of a program

    def binary(self, key: str) -> Path:
        return self.cache / "bin" / f"{self.name}-{key[:16]}"


def go() -> str:
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists() and not shutil.which(found):
        raise BuildError("no Go toolchain: put `go` (1.25+) on PATH or set GO=/path/to/go")
    return found


def go_env(cache: Path) -> dict[str, str]:
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


def stamp(program: GoProgram, go_binary: str) -> str:
    """The hash that identifies one build: module files, Go version, package and link flags."""
    digest = hashlib.sha256()
    for name in program.files:
        digest.update(name.encode() + b"\0" + (program.module_dir / name).read_bytes() + b"\0")
    go_version = subprocess.run(
        [go_binary, "version"], check=True, capture_output=True, text=True, env=go_env(program.cache)
    ).stdout.strip()
    digest.update(f"{go_version}\0{program.package}\0{program.ldflags}".encode())
    if program.test:
        digest.update(b"\0test")
    return digest.hexdigest()


def binary_path(program: GoProgram) -> Path:
    """Where the binary built from the current sources lives (it may not exist yet)."""
    return program.binary(stamp(program, go()))


def _build(program: GoProgram, go_binary: str, binary: Path) -> None:
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(f"{program.name}.tmp{os.getpid()}")
    verb = ["test", "-c"] if program.test else ["build"]
    cmd = [go_binary, *verb, "-trimpath", "-ldflags", program.ldflags, "-o", str(tmp), program.package]
    print(f"build: building {program.name} into {binary}", file=sys.stderr)
    if program.hint:
        print(f"build: {program.hint}", file=sys.stderr)
    started = time.monotonic()
    returncode = _run_with_progress(cmd, program, started)
    if returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"go build failed with exit code {returncode}: {' '.join(cmd)}")
    tmp.replace(binary)
    print(f"build: built {program.name} in {time.monotonic() - started:.0f}s", file=sys.stderr)


def _run_with_progress(cmd: list[str], program: GoProgram, started: float, every: float = 30.0) -> int:
    """Run the build; say every ``every`` seconds that it still runs (go build itself is silent)."""
    with subprocess.Popen(cmd, cwd=program.module_dir, env=go_env(program.cache)) as proc:
        while True:
            try:
                return proc.wait(timeout=every)
            except subprocess.TimeoutExpired:
                print(
                    f"build: {program.name} still building ({time.monotonic() - started:.0f}s)",
                    file=sys.stderr,
                )


def ensure(program: GoProgram, *, build: bool = True, make_target: str = "make cluster-up") -> Path:
    """The path of a current binary, built first if needed (and allowed); BuildError otherwise."""
    go_binary = go()
    program.cache.mkdir(parents=True, exist_ok=True)
    with open(program.cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        binary = program.binary(stamp(program, go_binary))
        if binary.is_file():
            return binary
        if not build:
            raise BuildError(f"{binary} is missing or stale; run `{make_target}` first")
        _build(program, go_binary, binary)
    return binary
