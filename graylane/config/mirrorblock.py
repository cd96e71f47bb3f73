"""The route document's ``mirror`` block (shadow traffic) and the vocabulary of its comparison results.

```jsonc
"mirror": {"percent": 10,                 // % of the requests routed to stable also sent to the canary
           "methods": ["GET"],            // [] = every method
           "maxBodyBytes": 65536,         // larger request bodies are not mirrored (0 - 10 MiB)
           "compare": {"body": false,     // also compare headers and the first maxBodyBytes of the bodies
                       "ignoreHeaders": []}}
```

The results (``graylane_mirror_total{result}``) are named here once, for the proxy that counts them, the
rollout analysis that judges them and the views that show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.matchblock import HEADER_NAME, METHOD
from graylane.config.model import MirrorCompare, MirrorSettings

MAX_MIRROR_BODY = 10 * 1024 * 1024
DEFAULT_MIRROR_BODY = 65536
MIRROR_KEYS = ("methods", "maxBodyBytes", "compare")

MATCH = "match"
MISMATCHES = ("status-mismatch", "header-mismatch", "body-mismatch")
"""The canary answered, differently from stable."""
CANARY_ERROR = "canary-error"
"""The canary did not answer (refused, reset, timed out, garbage, a body cut off)."""
NOT_SENT = ("dropped", "too-large")
"""Not mirrored: over ``--mirror-max-in-flight`` (or the canary pool's limit), or a body over maxBodyBytes."""
UNPAIRED = "unpaired"
"""The canary answered but stable's answer did not complete (stable failed, or the client went away)."""
RESULTS = (MATCH, *MISMATCHES, CANARY_ERROR, *NOT_SENT, UNPAIRED)


def mismatch_rate(counts: Mapping[str, float]) -> tuple[float, float, float | None]:
    """(compared pairs, mismatches, percent mismatched or None) from counts by result."""
    mismatches = sum(counts.get(r, 0.0) for r in MISMATCHES)
    compared = mismatches + counts.get(MATCH, 0.0)
    return compared, mismatches, (100.0 * mismatches / compared if compared else None)


def parse_mirror(c: FieldChecker, value: Any, *, stable: Any, canary: Any) -> MirrorSettings | None:
    """Validate ``mirror``; mirroring to a canary that is also stable is an error (nothing to compare)."""
    obj = c.obj(value, "mirror", required=("percent",), optional=MIRROR_KEYS)
    if obj is None:
        return None
    before = len(c.errors)
    percent = c.number(obj["percent"], "mirror.percent", lo=0, hi=100) if "percent" in obj else None
    if percent is not None and abs(percent * 100 - round(percent * 100)) > 1e-6:
        c.error("mirror.percent", "must have at most two decimals")
    methods = c.strings(
        obj.get("methods", []), "mirror.methods", max_len=16, pattern=METHOD, what="an upper-case HTTP method"
    )
    limit = c.integer(obj.get("maxBodyBytes", DEFAULT_MIRROR_BODY), "mirror.maxBodyBytes", lo=0,
                      hi=MAX_MIRROR_BODY)  # fmt: skip
    compare = _compare(c, obj.get("compare", {}), join("mirror", "compare"))
    if isinstance(stable, str) and stable == canary:
        c.error("mirror", f"the canary is also stable ({canary!r}): there is nothing to mirror to")
    if len(c.errors) != before or percent is None or limit is None or compare is None:
        return None
    return MirrorSettings(percent=percent, methods=methods, max_body_bytes=limit, compare=compare)


def _compare(c: FieldChecker, value: Any, path: str) -> MirrorCompare | None:
    obj = c.obj(value, path, optional=("body", "ignoreHeaders"))
    if obj is None:
        return None
    body = c.boolean(obj.get("body", False), join(path, "body"))
    names = c.strings(
        obj.get("ignoreHeaders", []),
        join(path, "ignoreHeaders"),
        max_len=64,
        pattern=HEADER_NAME,
        what="a header name",
    )
    lowered = {n.lower() for n in names}
    if len(lowered) != len(names):
        c.error(join(path, "ignoreHeaders"), "names must be unique (case-insensitively)")
    if names and body is False:
        c.error(join(path, "ignoreHeaders"), "headers are compared with the body: set body: true")
    if body is None:
        return None
    return MirrorCompare(body=body, ignore_headers=frozenset(lowered))
