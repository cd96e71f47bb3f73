"""The compiled route document (docs/route-config.md): model, canonical JSON, checksum and loader.

The operator's compile step builds a plain dict, calls :func:`seal` and writes :func:`canonical_json` of the
result; the proxy calls :func:`load_route_document` on what it reads. The loader validates the whole document
and raises one :class:`ConfigError` listing every problem with its field path; it never returns a partially
valid config. The model lives in :mod:`graylane.config.model`, the validation in
:mod:`graylane.config.loader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graylane.config.loader import parse_document
from graylane.config.model import (
    MAX_DOCUMENT_BYTES,
    MAX_REGEX_LENGTH,
    SCHEMA_VERSION,
    STRING_OPS,
    ConfigError,
    FieldError,
    HeaderMutation,
    JwtSettings,
    Match,
    MirrorCompare,
    MirrorSettings,
    RouteConfig,
    RouteRef,
    Rule,
    SecretRef,
    StickySettings,
    StringMatch,
    StringOp,
    TlsSettings,
    Track,
    UpstreamSpec,
    VersionRouting,
    canonical_json,
    document_checksum,
    seal,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_REGEX_LENGTH",
    "SCHEMA_VERSION",
    "STRING_OPS",
    "ConfigError",
    "FieldError",
    "HeaderMutation",
    "JwtSettings",
    "Match",
    "MirrorCompare",
    "MirrorSettings",
    "RouteConfig",
    "RouteRef",
    "Rule",
    "SecretRef",
    "StickySettings",
    "StringMatch",
    "StringOp",
    "TlsSettings",
    "Track",
    "UpstreamSpec",
    "VersionRouting",
    "canonical_json",
    "document_checksum",
    "load_route_document",
    "seal",
]


def load_route_document(raw: str | bytes | Mapping[str, Any], *, keep_document: bool = True) -> RouteConfig:
    """Validate and parse one route document; raise :class:`ConfigError` listing every problem.
    ``keep_document=False``: ``RouteConfig.document`` is left empty (the proxy never reads it back)."""
    return parse_document(raw, keep_document=keep_document)
