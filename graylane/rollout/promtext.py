"""A small, strict parser for the Prometheus text exposition format (version 0.0.4).

Strict on purpose: a proxy's ``/metrics`` page that does not parse is a failed scrape (the rollout holds),
never a page read half-way. Accepted per line:

- empty lines; ``# HELP …``, ``# TYPE …`` and other ``#`` comments;
- ``name{label="value",…} value [timestamp]`` with the format's escapes (``\\\\``, ``\\"``, ``\\n``) in
  label values, an optional trailing comma, ``+Inf`` / ``-Inf`` / ``NaN`` and decimal or exponent values.

Rejected with the line number: anything else, duplicate label names, the same series twice, values Python's
``float()`` would take but Prometheus would not (``1_000``, ``infinity``), and pages over ``max_bytes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_PAGE_BYTES = 16 * 1024 * 1024

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LABEL_VALUE = re.compile(r'"((?:[^"\\\n]|\\[\\"n])*)"')
_VALUE = re.compile(r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_TIMESTAMP = re.compile(r"-?\d{1,19}")
_ESCAPE = re.compile(r"\\([\\\"n])")
_PAIR_TEXT = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
# A well-formed line in one match (the common case); anything else takes the slow path, for a precise error.
_FAST_LINE = re.compile(
    rf"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{((?:{_PAIR_TEXT}(?:,{_PAIR_TEXT})*,?)?)\}})?"
    r"[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*"
)
_FAST_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}


class PromTextError(ValueError):
    """The page is not valid text exposition format; ``line`` is 1-based (0 = the page as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"metrics line {line}: {message}" if line else f"metrics page: {message}")


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample line: ``labels`` is a sorted tuple of (name, value) pairs, so samples are hashable."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str | None:
        for key, value in self.labels:
            if key == name:
                return value
        return None


def parse(text: str, *, max_bytes: int = MAX_PAGE_BYTES) -> list[Sample]:
    """Every sample on the page, in page order. Raises :class:`PromTextError` on the first bad line."""
    if len(text) > max_bytes:
        raise PromTextError(0, f"larger than {max_bytes} bytes")
    samples: list[Sample] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for number, line in _lines(text):
        sample = _parse_sample(line, number)
        key = (sample.name, sample.labels)
        if key in seen:
            raise PromTextError(number, f"series {_show(sample)} appears twice")
        seen.add(key)
        samples.append(sample)
    return samples


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\r" in line or "\x00" in line:
            raise PromTextError(number, "control character in line")
        yield number, line


def _parse_sample(line: str, number: int) -> Sample:
    fast = _FAST_LINE.fullmatch(line)
    if fast is not None:
        name, body, value, stamp = fast.groups()
        if _VALUE.fullmatch(value) and (stamp is None or _TIMESTAMP.fullmatch(stamp)):
            found = _FAST_PAIR.findall(body) if body else []
            pairs = dict(found)
            if len(pairs) == len(found):  # else a duplicate label: the slow path names it
                labels = tuple(sorted((k, _unescape(v) if "\\" in v else v) for k, v in pairs.items()))
                return Sample(name, labels, float(value))
    return _parse_sample_slowly(line, number)


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], value)


def _parse_sample_slowly(line: str, number: int) -> Sample:
    match = _NAME.match(line)
    if match is None:
        raise PromTextError(number, "expected a metric name")
    name, pos = match.group(), match.end()
    labels: tuple[tuple[str, str], ...] = ()
    if pos < len(line) and line[pos] == "{":
        labels, pos = _parse_labels(line, pos + 1, number)
    rest = line[pos:]
    if not rest[:1].isspace():
        raise PromTextError(number, f"expected a space and a value after {name!r}")
    fields = rest.split()
    if len(fields) not in (1, 2):
        raise PromTextError(number, "expected a value and an optional timestamp")
    if not _VALUE.fullmatch(fields[0]):
        raise PromTextError(number, f"{fields[0]!r} is not a sample value")
    if len(fields) == 2 and not _TIMESTAMP.fullmatch(fields[1]):
        raise PromTextError(number, f"{fields[1]!r} is not a timestamp in milliseconds")
    return Sample(name, labels, float(fields[0]))


def _parse_labels(line: str, pos: int, number: int) -> tuple[tuple[tuple[str, str], ...], int]:
    pairs: dict[str, str] = {}
    while True:
        if line.startswith("}", pos):
            return tuple(sorted(pairs.items())), pos + 1
        name_match = _LABEL_NAME.match(line, pos)
        if name_match is None:
            raise PromTextError(number, f"expected a label name at column {pos + 1}")
        label = name_match.group()
        if label in pairs:
            raise PromTextError(number, f"label {label!r} appears twice")
        pos = name_match.end()
        if not line.startswith("=", pos):
            raise PromTextError(number, f"expected '=' after label {label!r}")
        value_match = _LABEL_VALUE.match(line, pos + 1)
        if value_match is None:
            raise PromTextError(number, f"expected a quoted value for label {label!r}")
        pairs[label] = _unescape(value_match.group(1))
        pos = value_match.end()
        if line.startswith(",", pos):
            pos += 1
        elif not line.startswith("}", pos):
            raise PromTextError(number, f"expected ',' or '}}' after label {label!r}")


def _show(sample: Sample) -> str:
    body = ",".join(f"{k}={v!r}" for k, v in sample.labels)
    return f"{sample.name}{{{body}}}"
