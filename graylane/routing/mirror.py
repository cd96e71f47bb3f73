"""Shadow traffic: whether a request routed to stable is also sent to the canary; how the two answers compare.

The share is sticky on the route's sticky key when the request has one, with the split's hash but a bucket of
its own, so being mirrored does not correlate with being in the canary's share of the split:

    bucket = xxh3_64(utf8(salt) + b"\\x00mirror\\x00" + utf8(key)) mod 10_000
    mirrored  <=>  track is stable  and  method allowed  and  bucket < round(percent * 100)

Without a sticky key present, the caller's ``sample`` in [0, 1) decides (``sample * 10_000 < threshold``).
Pure: randomness comes in as ``sample``; the proxy counts, sends and reads.

A pair is compared on the status code; with ``compare.body`` also on the response headers (without framing
and hop-by-hop headers, ``Date`` and ``ignoreHeaders``; as a multiset of lower-case name and value) and on a
hash of the first ``maxBodyBytes`` of each body. The first difference found, in that order, is the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import xxhash

from graylane.config.mirrorblock import MATCH
from graylane.config.model import MirrorSettings
from graylane.routing.request import RequestView
from graylane.routing.sticky import BUCKETS, KeyExtractor, bucket_with_prefix, salt_prefix, threshold

MIRROR_SALT = b"mirror\x00"
ALWAYS_IGNORED = frozenset({"date"})

StickyKeys = tuple[tuple[str, KeyExtractor], ...]


@dataclass(frozen=True, slots=True)
class MirrorPlan:
    """A route's ``mirror`` compiled once: the bucket threshold, methods and what the comparison looks at."""

    settings: MirrorSettings
    threshold: int
    methods: frozenset[str]  # empty: every method
    prefix: bytes
    ignored: frozenset[bytes]  # lower-case header names left out of the comparison

    @classmethod
    def compile(cls, settings: MirrorSettings, salt: str) -> MirrorPlan:
        ignored = {name.encode("latin-1") for name in ALWAYS_IGNORED | settings.compare.ignore_headers}
        return cls(
            settings=settings,
            threshold=threshold(settings.percent),
            methods=frozenset(settings.methods),
            prefix=salt_prefix(salt) + MIRROR_SALT,
            ignored=frozenset(ignored),
        )

    @property
    def max_body(self) -> int:
        return self.settings.max_body_bytes

    @property
    def compare_body(self) -> bool:
        return self.settings.compare.body


def mirrored(plan: MirrorPlan, sticky_keys: StickyKeys, view: RequestView, sample: float) -> bool:
    """Whether a request routed to stable is mirrored (the caller checks the track)."""
    limit = plan.threshold
    if limit == 0 or (plan.methods and view.method not in plan.methods):
        return False
    for _, extract in sticky_keys:
        key = extract(view)
        if key:
            return bucket_with_prefix(plan.prefix, key) < limit
    return sample * BUCKETS < limit


def explain_mirror(
    plan: MirrorPlan | None, sticky_keys: StickyKeys, view: RequestView, track: str, sample: float
) -> dict[str, Any] | None:
    """The mirror part of ``/explain``: the share, whether this request is mirrored, and why."""
    if plan is None:
        return None
    out: dict[str, Any] = {"percent": plan.settings.percent, "threshold": plan.threshold, "mirrored": False}
    if track != "stable":
        out["why"] = "only requests routed to stable are mirrored"
    elif plan.methods and view.method not in plan.methods:
        out["why"] = f"method {view.method} is not in mirror.methods"
    else:
        key = next(((spec, k) for spec, extract in sticky_keys if (k := extract(view))), None)
        if key is not None:
            out["key"], out["bucket"] = key[0], bucket_with_prefix(plan.prefix, key[1])
        else:
            out["key"], out["sample"] = None, sample
        out["mirrored"] = mirrored(plan, sticky_keys, view, sample)
        out["why"] = "in the mirror share" if out["mirrored"] else "outside the mirror share"
    return out


class AnswerPrint:
    """What a pair is compared on, built from one answer as it arrives: status, headers, body hash."""

    __slots__ = ("_budget", "_hash", "headers", "status")

    def __init__(self, status: int, header_lines: Iterable[bytes], plan: MirrorPlan) -> None:
        self.status = status
        self.headers: tuple[tuple[bytes, bytes], ...] | None = None
        self._hash: Any = None
        self._budget = 0
        if plan.compare_body:
            self.headers = header_print(header_lines, plan.ignored)
            self._hash = xxhash.xxh3_64()
            self._budget = plan.max_body

    def feed(self, data: bytes) -> None:
        """A piece of the body (only the first ``maxBodyBytes`` count)."""
        budget = self._budget
        if budget > 0 and data:
            piece = data if len(data) <= budget else data[:budget]
            self._hash.update(piece)
            self._budget = budget - len(piece)

    @property
    def compares_body(self) -> bool:
        return self._hash is not None

    @property
    def body(self) -> int | None:
        return None if self._hash is None else int(self._hash.intdigest())


def header_print(lines: Iterable[bytes], ignored: frozenset[bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """Response header lines (``Name: value\\r\\n``) as a sorted multiset of (lower-case name, value)."""
    out = []
    for line in lines:
        name, _, value = line.rstrip(b"\r\n").partition(b":")
        lower = name.strip().lower()
        if lower not in ignored:
            out.append((lower, value.strip()))
    return tuple(sorted(out))


def compare(stable: AnswerPrint, canary: AnswerPrint) -> str:
    """``match``, ``status-mismatch``, ``header-mismatch`` or ``body-mismatch`` (the first difference)."""
    if stable.status != canary.status:
        return "status-mismatch"
    if stable.headers != canary.headers:
        return "header-mismatch"
    if stable.body != canary.body:
        return "body-mismatch"
    return MATCH
