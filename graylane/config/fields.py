"""Typed field readers that collect :class:`FieldError`s with paths instead of raising at once."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from graylane.config.model import FieldError

MAX_STRING = 4096
MAX_LIST = 1000


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class FieldChecker:
    """Reads JSON-shaped values; every reader returns ``None`` (and records an error) on a bad value."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def obj(
        self, value: Any, path: str, *, required: Sequence[str] = (), optional: Sequence[str] = ()
    ) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.error(path, f"must be an object, got {_kind(value)}")
            return None
        allowed = set(required) | set(optional)
        for key in value:
            if not isinstance(key, str):
                self.error(path, "object keys must be strings")
            elif key not in allowed:
                self.error(join(path, key), "unknown field")
        for key in required:
            if key not in value:
                self.error(join(path, key), "required field is missing")
        return value

    def string(
        self,
        value: Any,
        path: str,
        *,
        min_len: int = 1,
        max_len: int = MAX_STRING,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"must be a string, got {_kind(value)}")
            return None
        if len(value) < min_len:
            self.error(
                path, "must not be empty" if min_len == 1 else f"must be at least {min_len} characters"
            )
            return None
        if len(value) > max_len:
            self.error(path, f"must be at most {max_len} characters")
            return None
        if not _encodable(value):
            self.error(path, "must be valid Unicode (no lone surrogates)")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.error(path, f"must be {what or 'of the form ' + pattern.pattern}")
            return None
        return value

    def integer(self, value: Any, path: str, *, lo: int, hi: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be an integer, got {_kind(value)}")
            return None
        if not lo <= value <= hi:
            self.error(path, f"must be between {lo} and {hi}")
            return None
        return value

    def number(self, value: Any, path: str, *, lo: float, hi: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, f"must be a number, got {_kind(value)}")
            return None
        if not math.isfinite(value) or not lo <= value <= hi:
            self.error(path, f"must be between {lo:g} and {hi:g}")
            return None
        return float(value)

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, got {_kind(value)}")
            return None
        return value

    def array(self, value: Any, path: str, *, max_len: int = MAX_LIST, min_len: int = 0) -> Sequence[Any]:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            self.error(path, f"must be a list, got {_kind(value)}")
            return ()
        if len(value) > max_len:
            self.error(path, f"must have at most {max_len} items")
            return ()
        if len(value) < min_len:
            self.error(path, f"must have at least {min_len} item{'s' if min_len > 1 else ''}")
        return value

    def strings(
        self,
        value: Any,
        path: str,
        *,
        max_len: int = MAX_LIST,
        min_len: int = 0,
        unique: bool = True,
        **kw: Any,
    ) -> tuple[str, ...]:
        out: list[str] = []
        for i, item in enumerate(self.array(value, path, max_len=max_len, min_len=min_len)):
            text = self.string(item, join(path, i), **kw)
            if text is None:
                continue
            if unique and text in out:
                self.error(join(path, i), f"duplicate value {text!r}")
                continue
            out.append(text)
        return tuple(out)

    def string_map(self, value: Any, path: str, *, key_pattern: re.Pattern[str], what: str) -> dict[str, str]:
        out: dict[str, str] = {}
        mapping = self.obj(value, path, optional=tuple(value) if isinstance(value, Mapping) else ())
        if mapping is None:
            return out
        if len(mapping) > MAX_LIST:
            self.error(path, f"must have at most {MAX_LIST} entries")
            return out
        for key, item in mapping.items():
            if not isinstance(key, str) or not key_pattern.fullmatch(key):
                self.error(join(path, str(key)), f"key must be {what}")
                continue
            text = self.string(item, join(path, key), min_len=0)
            if text is not None:
                out[key] = text
        return out


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__
