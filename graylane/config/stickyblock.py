"""Validation of ``sticky`` settings: of a CanaryRoute document, an HTTP rule (schema 2), a TrafficPolicy."""

from __future__ import annotations

import re
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.model import StickySettings

STICKY_KEY = re.compile(
    r"(jwt|cookie|query):[^\x00-\x1f\x7f]{1,256}|header:[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}|sourceIP"
)


def parse_sticky(c: FieldChecker, value: Any, path: str, *, has_jwt: bool) -> StickySettings | None:
    obj = c.obj(value, path, required=("keys",))
    if obj is None:
        return None
    keys_path = join(path, "keys")
    keys = c.strings(obj.get("keys"), keys_path, min_len=1, max_len=16, pattern=STICKY_KEY,
                     what="jwt:<claim>, header:<Name>, cookie:<name>, query:<name> or sourceIP")  # fmt: skip
    for i, key in enumerate(keys):
        if key.startswith("jwt:") and not has_jwt:
            c.error(join(keys_path, i), "a jwt: key needs the route's jwt settings (jwt is null)")
    return StickySettings(keys=keys)
