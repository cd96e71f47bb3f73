"""Build (or reuse) the test cluster's Go binaries.

* ``graylane-testcluster``: ONE multi-call binary with kube-apiserver, kube-controller-manager,
  kube-scheduler, kubelet, kube-proxy (Kubernetes v<version>) and etcd, from the Go module in this
  directory (``go.mod``, ``go.sum``, ``main.go``).
  Cache: ``${XDG_CACHE_HOME:-~/.cache}/graylane/k8s-v<version>/``
  (version: env ``GRAYLANE_K8S_VERSION``, default 1.35.4).
* ``coredns``: CoreDNS with the cluster's plugins only (``coredns/``), cache ``graylane/coredns-<version>/``.
* ``imageprogs``: the static programs inside the images the node builds (``images/``: pause, echo).

The caching scheme is :mod:`cluster.gobuild` (binary name keyed by a hash of the sources, Go version
and link flags). CLI: ``python tests/cluster/build.py [--check] [--node]`` prints the paths
(``--check``: do not build, exit 1 when missing; ``--node``: also CoreDNS and the image programs).
Library: :func:`ensure_binary`, :func:`binary_path`, :func:`ensure_coredns`, :func:`ensure_imageprogs`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # run as a script: make the `cluster` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.gobuild import BuildError, GoProgram, ensure
from cluster.gobuild import binary_path as _binary_path

MODULE_DIR = Path(__file__).resolve().parent
MODULE_FILES = ("go.mod", "go.sum", "main.go")
DEFAULT_K8S_VERSION = "1.35.4"
BINARY_NAME = "graylane-testcluster"
COREDNS_VERSION = "v1.14.7"  # must match coredns/go.mod
COREDNS_FILES = ("go.mod", "go.sum", "main.go")
IMAGEPROGS_FILES = ("go.mod", "main.go")


def k8s_version() -> str:
    return os.environ.get("GRAYLANE_K8S_VERSION", DEFAULT_K8S_VERSION).removeprefix("v")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graylane"


def cache_dir(version: str | None = None) -> Path:
    return cache_root() / f"k8s-v{version or k8s_version()}"


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


def cluster_program(version: str | None = None) -> GoProgram:
    version = version or k8s_version()
    return GoProgram(
        name=BINARY_NAME,
        module_dir=MODULE_DIR,
        files=MODULE_FILES,
        cache=cache_dir(version),
        ldflags=_ldflags(version),
        hint="a cold build takes ~10-13 min on 2 cores (peak RSS ~2.3 GiB); later builds reuse the cache",
    )


def coredns_program() -> GoProgram:
    return GoProgram(
        name="coredns",
        module_dir=MODULE_DIR / "coredns",
        files=COREDNS_FILES,
        cache=cache_root() / f"coredns-{COREDNS_VERSION}",
        hint="a cold CoreDNS build takes ~2 min",
    )


def imageprogs_program() -> GoProgram:
    return GoProgram(
        name="imageprogs",
        module_dir=MODULE_DIR / "images",
        files=IMAGEPROGS_FILES,
        cache=cache_root() / "imageprogs",
    )


def binary_path(version: str | None = None) -> Path:
    """Where the binary for ``version`` lives (it may not exist yet)."""
    override = os.environ.get("GRAYLANE_TESTCLUSTER_BINARY")
    if override:
        return Path(override)
    return _binary_path(cluster_program(version))


def is_current(version: str | None = None) -> bool:
    """True when the binary built from the current module files exists."""
    return binary_path(version).is_file()


def ensure_binary(*, version: str | None = None, build: bool = True) -> Path:
    """Return the path of a current binary, building it first if needed (and allowed).

    Raises :class:`BuildError` when the build fails, or when ``build`` is false and the binary is
    missing or stale.
    """
    override = os.environ.get("GRAYLANE_TESTCLUSTER_BINARY")
    if override:
        if not Path(override).is_file():
            raise BuildError(f"GRAYLANE_TESTCLUSTER_BINARY={override} does not exist")
        return Path(override)
    return ensure(cluster_program(version), build=build, make_target="make controlplane")


def ensure_coredns(*, build: bool = True) -> Path:
    return ensure(coredns_program(), build=build, make_target="make controlplane")


def ensure_imageprogs(*, build: bool = True) -> Path:
    return ensure(imageprogs_program(), build=build, make_target="make controlplane")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="do not build; fail if missing or stale")
    parser.add_argument("--node", action="store_true", help="also CoreDNS and the image programs")
    args = parser.parse_args(argv)
    try:
        print(ensure_binary(build=not args.check))
        if args.node:
            print(ensure_coredns(build=not args.check))
            print(ensure_imageprogs(build=not args.check))
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["BuildError", "binary_path", "ensure_binary", "ensure_coredns", "ensure_imageprogs", "is_current"]

if __name__ == "__main__":
    sys.exit(main())
