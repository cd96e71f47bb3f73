"""Opening a MaxMind-format ``.mmdb`` file (file I/O, kept apart from :mod:`graylane.routing.geo`)."""

from __future__ import annotations

import os

import maxminddb

from graylane.routing.geo import MmdbLookup


def open_mmdb(path: str | os.PathLike[str]) -> MmdbLookup:
    """Open ``path`` (memory-mapped) and wrap it; raises ``maxminddb.InvalidDatabaseError``/``OSError``."""
    reader = maxminddb.open_database(os.fspath(path), maxminddb.MODE_AUTO)
    return MmdbLookup(reader)
