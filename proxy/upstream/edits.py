"""A Gateway API ``ResponseHeaderModifier`` applied to an upstream's response head before the client gets it.

``set`` replaces every header of that name, ``add`` appends a line (clients join repeated headers with
``,``: ``X-A: upstream`` + add ``X-A: mine`` reads ``upstream,mine``), ``remove`` drops every line of the
name.
Names compare case-insensitively. Framing and hop-by-hop headers stay the proxy's: the loader refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from graylane.proxy.upstream.headers import UpstreamHead

Edit = tuple[Mapping[str, str], Mapping[str, str], Iterable[str]]  # (set, add, remove)


@dataclass(frozen=True, slots=True)
class ResponseEdit:
    """Compiled once per rule (and backend): lower-case names to drop, lines to append."""

    drop: frozenset[bytes]
    extra: tuple[bytes, ...]

    @classmethod
    def compile(cls, *edits: Edit) -> ResponseEdit | None:
        """From (set, add, remove) triples applied in order (a rule's, then its backend's); None if empty."""
        drop: set[bytes] = set()
        extra: list[bytes] = []
        for set_headers, add, remove in edits:
            replaced = {name.lower().encode("latin-1") for name in (*set_headers, *remove)}
            drop |= replaced
            extra = [line for line in extra if line.partition(b":")[0].lower() not in replaced]
            extra += [f"{k}: {v}\r\n".encode() for k, v in set_headers.items()]
            extra += [f"{k}: {v}\r\n".encode() for k, v in add.items()]
        if not drop and not extra:
            return None
        return cls(drop=frozenset(drop), extra=tuple(extra))

    def apply(self, head: UpstreamHead) -> None:
        drop = self.drop
        if drop:
            head.lines = [line for line in head.lines if line.partition(b":")[0].strip().lower() not in drop]
        head.lines.extend(self.extra)
