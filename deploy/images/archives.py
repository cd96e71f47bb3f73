"""The cached docker-archive tarballs: where they live, their record (key, sizes) and cleanup of old ones."""

from __future__ import annotations

import json
import tarfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    """Written next to an archive when it is built (``<archive>.json``)."""

    ref: str
    key: str
    builder: str
    archive_bytes: int
    layers_bytes: int  # the image's layers, uncompressed: what the node unpacks
    gzip_bytes: int  # the same archive gzip-compressed: about what a registry would transfer
    build_seconds: float


def archive_path(directory: Path, name: str, version: str, key: str) -> Path:
    return directory / f"{name}-{version}-{key[:16]}.tar"


def read_record(archive: Path) -> Record | None:
    sidecar = archive.with_suffix(".json")
    if not (archive.exists() and sidecar.exists()):
        return None
    return Record(**json.loads(sidecar.read_text()))


def write_record(archive: Path, record: Record) -> None:
    archive.with_suffix(".json").write_text(json.dumps(asdict(record), indent=2) + "\n")


def measure(archive: Path) -> tuple[int, int, int]:
    """(archive bytes, uncompressed layer bytes, gzip-compressed archive bytes)."""
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = sum(tar.getmember(layer).size for layer in manifest[0]["Layers"])
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    compressed = 0
    with archive.open("rb") as source:
        while chunk := source.read(1 << 20):
            compressed += len(compressor.compress(chunk))
    compressed += len(compressor.flush())
    return archive.stat().st_size, layers, compressed


def drop_others(directory: Path, name: str, keep: Path) -> None:
    """Remove the older archives (and records) of image ``name``: one per image is kept."""
    for old in directory.glob(f"{name}-*"):
        if old.with_suffix(".tar") != keep and old.suffix in (".tar", ".json", ".partial"):
            old.unlink(missing_ok=True)


def mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"
