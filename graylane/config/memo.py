"""A bounded memo of validated document blocks, keyed by their JSON content.

At 10,000 routes most blocks repeat: the same QA rule, the same office CIDRs, the same sticky keys, one
Upstream shared by hundreds of routes, and every reload of a route whose weight alone changed. The loader
asks the memo before validating a block (a rule, an upstream, ``sticky``, ``jwt``, ``requestHeaders``):
an identical block seen before returns the *same* frozen object, which saves the validation and lets every
route that holds it share one copy (the compiled matchers are shared the same way, see
``graylane.routing.matchers``). Only blocks that validated without an error are remembered, so errors are
always reported with the paths of the document at hand. The memo is a pure cache of a pure function: the
result never depends on whether it hit. The key is the block's ``repr``: for JSON data (str, int, float,
bool, None, lists and dicts, as the loader has it) two blocks with the same repr are the same JSON with the
same key order -- canonical documents have sorted keys, so equal blocks meet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from graylane.config.fields import FieldChecker
from graylane.lru import Lru

T = TypeVar("T")
LIMIT = 4096


class BlockMemo:
    """Least-recently-used validated blocks by ``(kind, repr)``; at most ``limit`` entries."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._memo: Lru[tuple[str, str], Any] = Lru(limit)
        self.hits = 0
        self.misses = 0

    def parse(self, c: FieldChecker, kind: str, value: Any, parse: Callable[[], T | None]) -> T | None:
        """``parse()`` unless an identical block of this ``kind`` validated before."""
        try:
            key = (kind, repr(value))
        except RecursionError:
            return parse()
        found = self._memo.get(key)
        if found is not None:
            self.hits += 1
            return found  # type: ignore[no-any-return]
        self.misses += 1
        before = len(c.errors)
        result = parse()
        if result is not None and len(c.errors) == before:
            self._memo.put(key, result)
        return result

    def clear(self) -> None:
        self._memo.clear()


BLOCKS = BlockMemo()
"""The loader's memo (one per process; the proxy, the operator and ``graylane render`` each have theirs)."""
