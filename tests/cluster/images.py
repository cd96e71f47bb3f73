"""Images the node needs, built here (never pulled) as docker-archive tars, and imported into containerd.

* ``PAUSE`` (``localhost/graylane/pause:v1``): the pod sandbox image (containerd's ``sandbox_image``):
  the static ``imageprogs`` program as ``/pause``, run as 65535.
* ``TESTAPP`` (``localhost/graylane/testapp:v1``): the same program as ``/echo`` (an HTTP server on
  :8080, the entrypoint), ``/crash`` (prints three lines and exits 3), ``/get URL`` and
  ``/lookup NAME`` (an HTTP and a DNS client), run as 10001.

An archive is a plain tar (``manifest.json``, the image config, one uncompressed layer) with fixed
timestamps, so its bytes -- and the cache file name ``<cache>/images/<name>-<hash>.tar`` -- depend only
on the content. :func:`import_archives` loads any docker-archive or OCI tar into the node's containerd
(namespace ``k8s.io``); ``launcher.py import-images TAR...`` is the CLI for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster import build

NAMESPACE = "k8s.io"


@dataclass(frozen=True)
class ImageSpec:
    ref: str
    files: tuple[str, ...]  # paths in the image; the first is the program, the others link to it
    entrypoint: tuple[str, ...]
    user: str


PAUSE = ImageSpec("localhost/graylane/pause:v1", ("pause",), ("/pause",), "65535:65535")
TESTAPP = ImageSpec(
    "localhost/graylane/testapp:v1", ("echo", "crash", "get", "lookup"), ("/echo",), "10001:10001"
)
NODE_IMAGES = (PAUSE, TESTAPP)


def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _layer(spec: ImageSpec, program: bytes) -> bytes:
    first, *links = spec.files
    main = tarfile.TarInfo(first)
    main.size, main.mode = len(program), 0o755
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [(main, program)]
    for name in links:
        link = tarfile.TarInfo(name)
        link.type, link.linkname, link.mode = tarfile.LNKTYPE, first, 0o755
        members.append((link, None))
    return _tar_bytes(members)


def _config(spec: ImageSpec, layer_digest: str) -> bytes:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": list(spec.entrypoint), "User": spec.user, "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def archive_bytes(spec: ImageSpec, program: bytes) -> bytes:
    """A docker-archive tar of one image whose only layer holds ``program``."""
    layer = _layer(spec, program)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = _config(spec, layer_digest)
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [spec.ref], "Layers": [f"{layer_digest}/layer.tar"]}]
    entries = [("manifest.json", json.dumps(manifest).encode()), (config_name, config)]
    entries.append((f"{layer_digest}/layer.tar", layer))
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for name, data in entries:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        members.append((info, data))
    return _tar_bytes(members)


def ensure_archive(spec: ImageSpec, *, cache: Path | None = None) -> Path:
    """The cached archive of ``spec`` (built when missing); its name holds the content hash."""
    program = build.ensure_imageprogs().read_bytes()
    data = archive_bytes(spec, program)
    name = spec.ref.rsplit("/", 1)[-1].replace(":", "-")
    directory = (cache or build.cache_root()) / "images"
    path = directory / f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.tar"
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def ctr(socket: Path, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``ctr --address <socket> -n k8s.io ARGS`` (raises CalledProcessError with stderr)."""
    cmd = ["ctr", "--address", str(socket), "-n", NAMESPACE, *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)


def containerd_socket(state_dir: Path) -> Path:
    return Path(state_dir).resolve() / "node" / "containerd" / "containerd.sock"


def import_archives(*, state_dir: Path, archives: Sequence[Path]) -> list[str]:
    """Import docker-archive/OCI tars into the node's containerd; return the image references it reports."""
    socket = containerd_socket(state_dir)
    if not socket.exists():
        raise FileNotFoundError(f"no containerd socket at {socket}: is the node up (`make cluster-up`)?")
    refs: list[str] = []
    for archive in archives:
        out = ctr(socket, "images", "import", str(archive)).stdout
        refs += [line.split()[1] for line in out.splitlines() if line.startswith("unpacking ")]
    return refs


def image_refs(*, state_dir: Path) -> list[str]:
    """Every image reference in the node's containerd (namespace k8s.io)."""
    out = ctr(containerd_socket(state_dir), "images", "list", "-q").stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())
