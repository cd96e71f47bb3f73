"""Strict JSON decoding for documents that cross a trust boundary (route documents, JWT payloads).

Beyond :func:`json.loads` it rejects: a byte-order mark, non-UTF-8 bytes, duplicate object keys (Python keeps
the last one silently), ``NaN``/``Infinity``, numbers that overflow to infinity, integers longer than 20
digits (CPU in int parsing), nesting deeper than ``max_depth`` and documents above ``max_bytes``.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INT_DIGITS = 20


class StrictJsonError(ValueError):
    """The text is not acceptable JSON; the message says why (never echoes the input)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not allowed")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise StrictJsonError("integer too long")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise StrictJsonError("number too long")
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError("number out of range")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_parse_int, parse_float=_parse_float
)


def _depth_ok(text: str, max_depth: int) -> bool:
    """Cheap pre-scan: bracket nesting outside strings never exceeds ``max_depth``."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def loads_strict(raw: str | bytes, *, max_bytes: int, max_depth: int = 32) -> Any:
    """Decode ``raw`` strictly; raise :class:`StrictJsonError` with a short reason."""
    if len(raw) > max_bytes:
        raise StrictJsonError(f"document larger than {max_bytes} bytes")
    if isinstance(raw, bytes):
        if raw.startswith(b"\xef\xbb\xbf"):
            raise StrictJsonError("byte-order mark is not allowed")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJsonError(f"not UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        raise StrictJsonError("byte-order mark is not allowed")
    brackets = text.count("[") + text.count("{")  # C-speed; the Python scan below only when it could matter
    if brackets > max_depth and not _depth_ok(text, max_depth):
        raise StrictJsonError(f"nested deeper than {max_depth} levels")
    try:
        return _DECODER.decode(text)
    except StrictJsonError:
        raise
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:
        raise StrictJsonError(f"not valid JSON: {type(exc).__name__}") from None
