"""``make images``: build the repository's Dockerfiles into docker-archive tarballs, no daemon, no registry.

Images (tag: the chart's ``appVersion``), one per ``deploy/docker/Dockerfile.<component>``:
``graylane/graylane-operator``, ``graylane/graylane-proxy`` and ``graylane/graylane-demo-backend`` (the test
upstream ``tests/upstream_app.py``; the demo and the pod tests run it as v1 and v2).

Builder: Docker when ``docker info`` succeeds (its defaults: the upstream ``python`` image and the network),
else buildah from Debian (installed when missing by ``install-deps.sh``); ``GRAYLANE_IMAGE_BUILDER=buildah``
or ``docker`` chooses. With buildah nothing is pulled and the build has no network: the base images are built
from Debian packages (``base.py``) and pip installs wheels the host downloaded (``wheels.py``).

Cache: ``${XDG_CACHE_HOME:-~/.cache}/graylane/images/``: ``archives/<image>-<version>-<key>.tar`` (+ ``.json``
with sizes), ``wheels/``, ``buildah/`` (its storage), ``logs/``. The key hashes the Dockerfile, every file its
``.dockerignore`` admits, the base recipe, the wheel set and the builder (version and build commands); an
archive with the current key is reused ("cached") and older ones are deleted.

CLI: ``python deploy/images/build.py [--only COMPONENT ...]`` prints ``<image ref> <archive path>`` per image
on stdout (progress on stderr). Library: :func:`ensure_images` -> ``{ref: archive path}``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `images` package (deploy/images) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from images import archives, base, context, wheels
from images.builders import Buildah, Builder, Docker, Inputs, Request, docker_answers
from images.progress import phase, say

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "deploy" / "docker"
CHART = ROOT / "deploy" / "helm" / "graylane" / "Chart.yaml"
COMPONENTS = ("operator", "proxy", "demo-backend")
REPOSITORY = "graylane"


def cache_dir() -> Path:
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(home) / "graylane" / "images"


def app_version() -> str:
    found = re.search(r'^appVersion:\s*"?([^"\s]+)"?', CHART.read_text(), re.MULTILINE)
    assert found, f"no appVersion in {CHART}"
    return found.group(1)


def image_ref(component: str) -> str:
    return f"{REPOSITORY}/graylane-{component}:{app_version()}"


def dockerfile(component: str) -> Path:
    return DOCKER_DIR / f"Dockerfile.{component}"


def ensure_build_tools() -> None:
    """buildah and debootstrap, from Debian, when missing (the same script .ci/run uses)."""
    if shutil.which("buildah") and shutil.which("debootstrap"):
        return
    with phase("installing buildah and debootstrap (apt)"):
        subprocess.run(["bash", str(Path(__file__).with_name("install-deps.sh"))], check=True)


def choose_builder(cache: Path) -> Builder:
    wanted = os.environ.get("GRAYLANE_IMAGE_BUILDER") or ("docker" if docker_answers() else "buildah")
    if wanted == "docker":
        return Docker()
    if wanted != "buildah":
        raise SystemExit(f"GRAYLANE_IMAGE_BUILDER must be buildah or docker, not {wanted!r}")
    ensure_build_tools()
    return Buildah(cache / "buildah")


def requirements() -> list[str]:
    names = wheels.project_requirements(ROOT / "pyproject.toml")
    for component in COMPONENTS:
        names += wheels.dockerfile_requirements(dockerfile(component).read_text())
    return sorted(set(names))


def image_key(component: str, files: list[str], builder_version: str, inputs_digest: str) -> str:
    h = hashlib.sha256()
    for part in (
        builder_version,
        inputs_digest,
        dockerfile(component).read_text(),
        context.digest(ROOT, files),
    ):
        h.update(hashlib.sha256(part.encode()).digest())
    return h.hexdigest()


def _source_digest() -> str:
    """The build commands are part of the builder: a change to them rebuilds."""
    return hashlib.sha256(Path(__file__).with_name("builders.py").read_bytes()).hexdigest()


def context_for(component: str) -> list[str]:
    ignore = dockerfile(component).with_name(f"Dockerfile.{component}.dockerignore")
    return context.context_files(ROOT, ignore.read_text())


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One build at a time per cache (make images and a test session may overlap)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_images(components: Sequence[str] = COMPONENTS, *, cache: Path | None = None) -> dict[str, Path]:
    """Build what is missing; ``{image ref: docker-archive path}`` for ``components``, in their order."""
    cache = cache or cache_dir()
    with locked(cache):
        builder = choose_builder(cache)
        version = builder.version() + _source_digest()
        wheel_dir: Path | None = None
        digest = "docker"
        if isinstance(builder, Buildah):
            with phase(
                f"wheels for Python {base.PYTHON} (downloaded by the host's pip once per requirement set)"
            ):
                wheel_dir = wheels.ensure_wheels(cache=cache, requirements=requirements(), python=base.PYTHON)
            digest = base.recipe_key() + wheels.wheelset_digest(wheel_dir)
        inputs: Inputs | None = None
        result: dict[str, Path] = {}
        for component in components:
            files = context_for(component)
            key = image_key(component, files, version, digest)
            archive = archives.archive_path(cache / "archives", f"graylane-{component}", app_version(), key)
            fresh = archives.read_record(archive) is None
            if fresh:
                if inputs is None and isinstance(builder, Buildah) and wheel_dir is not None:
                    inputs = _prepare(builder, cache, wheel_dir)
                _build(builder, component, files, archive, key, inputs, cache)
            _report(archive, "built" if fresh else "cached")
            result[image_ref(component)] = archive
        return result


def _prepare(buildah: Buildah, cache: Path, wheel_dir: Path) -> Inputs:
    buildah.tidy()
    bases = base.ensure_bases(buildah, logs=cache / "logs")
    return Inputs(base=bases.base, build_base=bases.build_base, wheels=wheel_dir)


def _build(builder: Builder, component: str, files: list[str], archive: Path, key: str,
           inputs: Inputs | None, cache: Path) -> None:  # fmt: skip
    ref = image_ref(component)
    log = cache / "logs" / f"{component}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    with (
        phase(f"building {ref} with {builder.name} (log {log})"),
        tempfile.TemporaryDirectory(dir=cache, prefix="context-") as staged,
    ):
        context.stage(ROOT, files, Path(staged))
        builder.build(Request(dockerfile(component), Path(staged), ref, partial, log), inputs)
    partial.rename(archive)
    with phase(f"measuring {archive.name}"):
        size, layers, gzipped = archives.measure(archive)
    seconds = round(time.monotonic() - started, 1)
    archives.write_record(archive, archives.Record(ref, key, builder.name, size, layers, gzipped, seconds))
    archives.drop_others(archive.parent, f"graylane-{component}", archive)


def _report(archive: Path, state: str) -> None:
    record = archives.read_record(archive)
    assert record is not None
    say(
        f"{record.ref}: {state} {archive} (layers {archives.mb(record.layers_bytes)}, "
        f"gzip {archives.mb(record.gzip_bytes)}, built by {record.builder} in {record.build_seconds:.0f}s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", choices=COMPONENTS, help="build only this image (repeatable)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    built = ensure_images(args.only or COMPONENTS)
    for ref, archive in built.items():
        print(ref, archive)
    say(f"{len(built)} images ready in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
