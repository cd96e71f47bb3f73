"""The sticky, monotone weighted split.

The hash is documented and stable across processes, restarts and machines (never Python's ``hash()``):

    bucket = xxh3_64(utf8(salt) + b"\\x00" + utf8(key)) mod 10_000        (xxhash, seed 0, as an unsigned int)
    canary  <=>  bucket < round(weight * 100)                            (weight in percent, two decimals)

Because the threshold only grows with the weight, raising the weight only moves keys from stable to canary.
Sticky keys, first present (non-empty) wins: ``jwt:<claim>`` (a verified string/integer claim),
``header:<Name>``, ``cookie:<name>``, ``query:<name>``, ``sourceIP`` (the resolved client IP).
Strings are encoded as UTF-8 with ``surrogatepass`` so that any header value hashes (never raises).

A Gateway API rule with a TrafficPolicy's ``sticky`` splits the same buckets over its N backends
(:func:`monotone_ranges`): backends 1..N-1 get consecutive slots sized by their weights among themselves,
and the last backend takes its share ``w_N / total`` at the end of every slot. Raising the last backend's
weight only shrinks the others' parts of their slots: users only ever move onto the last backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import xxhash

from graylane.routing.matchers import claim_text
from graylane.routing.request import RequestView

BUCKETS = 10_000
KeyExtractor = Callable[[RequestView], str | None]
_xxh3 = xxhash.xxh3_64_intdigest


def salt_prefix(salt: str) -> bytes:
    return salt.encode("utf-8", "surrogatepass") + b"\x00"


def bucket(salt: str, key: str) -> int:
    """The bucket (0..9999) of ``key`` under the route's ``salt``."""
    return _xxh3(salt_prefix(salt) + key.encode("utf-8", "surrogatepass")) % BUCKETS


def bucket_with_prefix(prefix: bytes, key: str) -> int:
    """Same as :func:`bucket` with ``salt_prefix(salt)`` computed once (the proxy's hot path)."""
    return _xxh3(prefix + key.encode("utf-8", "surrogatepass")) % BUCKETS


def threshold(weight: float) -> int:
    """Buckets below this go to canary: ``round(weight * 100)``, 0..10_000."""
    return round(weight * 100)


def key_extractor(spec: str) -> KeyExtractor:
    """Compile one sticky key spec (``header:X-User-Id`` ...) into a function returning the key or None."""
    kind, _, name = spec.partition(":")
    if spec == "sourceIP":
        return lambda view: view.client_ip_text() or None
    if kind == "header":
        lname = name.lower()
        return lambda view: view.headers.get(lname) or None
    if kind == "cookie":
        return lambda view: view.cookies().get(name) or None
    if kind == "query":
        return lambda view: view.query().get(name) or None
    if kind == "jwt":
        return lambda view: _claim_key(view, name)
    raise ValueError(f"unknown sticky key {spec!r}")


def _claim_key(view: RequestView, name: str) -> str | None:
    claims = view.claims()
    if claims is None:
        return None
    return claim_text(claims.get(name)) or None


def compile_keys(specs: Iterable[str]) -> tuple[tuple[str, KeyExtractor], ...]:
    return tuple((spec, key_extractor(spec)) for spec in specs)


def first_key(
    extractors: tuple[tuple[str, KeyExtractor], ...], view: RequestView
) -> tuple[str, str] | tuple[None, None]:
    """``(spec, key)`` of the first sticky key present in ``view``."""
    for spec, extract in extractors:
        key = extract(view)
        if key:
            return spec, key
    return None, None


def monotone_ranges(weights: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The sticky split of ``weights`` (backends in order) as bucket ranges: ``(upper bounds, backend
    indexes)``, bucket ``b`` belongs to ``indexes[bisect_right(bounds, b)]``. Empty when every weight is 0."""
    last = len(weights) - 1
    rest = sum(weights[:last]) if last > 0 else 0
    total = rest + (weights[last] if last >= 0 else 0)
    if total == 0:
        return (), ()
    if rest == 0:
        return (BUCKETS,), (last,)
    bounds: list[int] = []
    owners: list[int] = []
    start = cumulative = 0
    for i in range(last):
        cumulative += weights[i]
        end = BUCKETS * cumulative // rest
        used = (end - start) * rest // total  # never grows with the last weight
        if used > 0:
            bounds.append(start + used)
            owners.append(i)
        if end > start + used:
            bounds.append(end)
            owners.append(last)
        start = end
    return tuple(bounds), tuple(owners)
