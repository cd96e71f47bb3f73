"""The builders behind ``make images``: buildah (daemonless, from Debian) and Docker (when a daemon answers).

Both build a repository Dockerfile from a staged context (``context.py``) and write a docker-archive tarball
that ``docker load`` and ``ctr images import`` accept.

buildah keeps its own storage under the cache (``--root``/``--runroot``, the ``vfs`` driver: no overlay or
FUSE needed) and runs ``RUN`` steps with chroot isolation. A build runs inside an empty network namespace
(``unshare --net``): it cannot pull an image or reach an index, so everything it uses is local (the Debian
bases from ``base.py``, the wheels from ``wheels.py``, mounted read-only at ``/mnt``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class BuildError(RuntimeError):
    """A builder command failed (the message names the log with the details)."""


@dataclass(frozen=True)
class Request:
    dockerfile: Path
    context: Path
    ref: str  # e.g. graylane/graylane-proxy:0.1.0, also the tag inside the archive
    archive: Path
    log: Path


@dataclass(frozen=True)
class Inputs:
    """What the buildah path feeds a build: the two Debian bases and the wheel directory."""

    base: str
    build_base: str
    wheels: Path


class Builder(Protocol):
    name: str

    def version(self) -> str: ...

    def build(self, request: Request, inputs: Inputs | None) -> None: ...


def run_logged(cmd: list[str], *, log: Path | None = None) -> str:
    """Run ``cmd``; without ``log`` its stdout is returned, with ``log`` all its output goes there."""
    if log is None:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode:
            raise BuildError(
                f"{' '.join(cmd[:6])} ... failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )
        return done.stdout
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(cmd)}\n")
        sink.flush()
        done = subprocess.run(cmd, check=False, stdout=sink, stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BuildError(f"{cmd[0]} failed ({done.returncode}); log {log}:\n{tail}")
    return ""


class Buildah:
    name = "buildah"

    def __init__(self, state: Path) -> None:
        self.root = state / "storage"
        self.runroot = state / "run"

    def __call__(self, *args: str, log: Path | None = None, offline: bool = False) -> str:
        cmd = ["buildah", "--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs"]
        return run_logged(["unshare", "--net", *cmd, *args] if offline else [*cmd, *args], log=log)

    def version(self) -> str:
        return self("--version").strip()

    def has_image(self, ref: str) -> bool:
        return bool(self("images", "--quiet", "--filter", f"reference={ref}").strip())

    def image_id(self, ref: str) -> str:
        return self("inspect", "--type", "image", "--format", "{{.FromImageID}}", ref).strip()

    def drop_other_tags(self, repository: str, keep: str) -> None:
        """Remove every ``repository:*`` image but ``keep`` (old bases must not pile up in the storage)."""
        for name in self("images", "--format", "{{.Name}}:{{.Tag}}").split():
            if name.startswith(repository + ":") and name != keep:
                self("rmi", "--force", name)

    def tidy(self) -> None:
        """Remove leftover working containers (an interrupted run) and untagged images."""
        self("rm", "--all")
        self("rmi", "--prune")

    def build(self, request: Request, inputs: Inputs | None) -> None:
        assert inputs is not None, "buildah builds from the local Debian bases"
        local = f"docker.io/{request.ref}"  # as the node names it; the archive then carries this one tag
        self(
            *("build", "--isolation", "chroot", "--network", "host", "--pull=never"),
            *("--from", inputs.build_base, "--build-arg", f"PYTHON_IMAGE={inputs.base}"),
            *("--volume", f"{inputs.wheels}:/mnt:ro", "-f", str(request.dockerfile), "-t", local),
            str(request.context),
            log=request.log,
            offline=True,
        )
        try:
            self("push", local, f"docker-archive:{request.archive}:{request.ref}", log=request.log)
        finally:
            self("rmi", local)  # the archive is the cached artifact; vfs copies would fill the disk


class Docker:
    """Docker with its defaults: the Dockerfile's upstream base image and the network (not tested here)."""

    name = "docker"

    def version(self) -> str:
        return "docker " + run_logged(["docker", "version", "--format", "{{.Server.Version}}"]).strip()

    def build(self, request: Request, inputs: Inputs | None) -> None:
        build = ["docker", "build", "-f", str(request.dockerfile), "-t", request.ref, str(request.context)]
        run_logged(build, log=request.log)
        run_logged(["docker", "save", "-o", str(request.archive), request.ref], log=request.log)


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], check=False, capture_output=True).returncode == 0
