"""The Gateway API conformance suite of the pinned release, its echo backend and its CRDs -- built here.

Everything comes from the Go module in this directory (``go.mod``/``go.sum`` pin
``sigs.k8s.io/gateway-api{,/conformance}`` v1.6.3), through the module proxy at build time and the cache
``${XDG_CACHE_HOME:-~/.cache}/graylane/gateway-api-v1.6.3/`` afterwards; nothing is fetched at test time.

* :func:`crds` -- the standard-channel CRDs (``config/crd/standard/`` of the module), for the operator tests
  and for ``make conformance``;
* :func:`ensure_suite` -- ``go test -c`` of ``conformance_test.go``: the suite as one binary;
* :func:`ensure_echo` / :func:`backend_archives` -- the suite's echo backend (``conformance/echo-basic``) as
  images under the three names the suite's manifests use, and the base manifests' UDP backend (CoreDNS with
  the suite Corefile's plugins, ``coredns/``, from the test cluster's CoreDNS module): never pulled, imported.

CLI: ``python tests/conformance/suite.py crds|suite|backends`` prints the path(s), building what is missing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

if not __package__:  # run as a script: make the `cluster` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import images
from cluster.build import COREDNS_VERSION, cache_root
from cluster.gobuild import BuildError, GoProgram, ensure, go, go_env

VERSION = "v1.6.3"
MODULE_DIR = Path(__file__).resolve().parent
MODULE = "sigs.k8s.io/gateway-api"
ECHO_PACKAGE = f"{MODULE}/conformance/echo-basic"
ECHO_TAGS = ("v1.5.1", "v1.6.0-dev.2", "v1.6.0-dev.3")  # the names the suite's manifests use (one program)
ECHO_REFS = tuple(f"registry.k8s.io/gateway-api/echo-basic:{tag}" for tag in ECHO_TAGS)
COREDNS_REF = "registry.k8s.io/coredns/coredns:v1.12.2"  # the base manifests' UDP backend


def cache_dir() -> Path:
    return cache_root() / f"gateway-api-{VERSION}"


def crds(*, download: bool = True) -> Path:
    """The directory of the standard-channel CRD files, copied out of the module cache once."""
    target = cache_dir() / "crd" / "standard"
    if target.is_dir() and any(target.glob("*.yaml")):
        return target
    if not download:
        raise BuildError(f"{target} is missing: run `make gateway-api` (reads the Go module proxy once)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    found = subprocess.run(
        [go(), "mod", "download", "-json", MODULE], cwd=MODULE_DIR, env=go_env(cache_dir()),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    source = Path(json.loads(found.stdout)["Dir"]) / "config" / "crd" / "standard"
    tmp = target.with_name("standard.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    for path in tmp.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    tmp.replace(target)
    return target


def suite_program() -> GoProgram:
    return GoProgram(
        name="gateway-conformance", module_dir=MODULE_DIR, files=("go.mod", "go.sum", "conformance_test.go"),
        cache=cache_dir(), package=".", test=True,
        hint="a cold build of the suite takes a few minutes on 2 cores; later builds reuse the cache",
    )  # fmt: skip


def echo_program() -> GoProgram:
    return GoProgram(name="echo-basic", module_dir=MODULE_DIR, files=("go.mod", "go.sum"), cache=cache_dir(),
                     package=ECHO_PACKAGE)  # fmt: skip


def coredns_program() -> GoProgram:
    """Shares the test cluster's CoreDNS cache (same module, same go.sum): only these plugins compile anew."""
    cache = cache_root() / f"coredns-{COREDNS_VERSION}"
    files = ("go.mod", "go.sum", "main.go")
    return GoProgram(name="coredns-conformance", module_dir=MODULE_DIR / "coredns", files=files, cache=cache)


def ensure_suite(*, build: bool = True) -> Path:
    return ensure(suite_program(), build=build, make_target="make conformance")


def ensure_echo(*, build: bool = True) -> Path:
    return ensure(echo_program(), build=build, make_target="make conformance")


def backend_archives(*, build: bool = True) -> list[Path]:
    """docker-archive tars of the suite's backends under the names its manifests use."""
    echo = ensure_echo(build=build).read_bytes()
    out = [
        _archive(images.ImageSpec(ref, ("echo-basic",), ("/echo-basic",), "65532:65532"), echo)
        for ref in ECHO_REFS
    ]
    coredns = ensure(coredns_program(), build=build, make_target="make conformance").read_bytes()
    out.append(_archive(images.ImageSpec(COREDNS_REF, ("coredns",), ("/coredns",), "0:0"), coredns))
    return out


def _archive(spec: images.ImageSpec, program: bytes) -> Path:
    data = images.archive_bytes(spec, program)
    name = spec.ref.rsplit("/", 1)[-1].replace(":", "-")
    path = cache_dir() / "images" / f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.tar"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_bytes(data)
        path.with_suffix(".tmp").replace(path)
    return path


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "crds"
    try:
        if what == "crds":
            print(crds())
        elif what == "suite":
            print(ensure_suite())
        elif what == "backends":
            print(*backend_archives(), sep="\n")
        else:
            print(f"usage: {sys.argv[0]} crds|suite|backends", file=sys.stderr)
            return 2
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
