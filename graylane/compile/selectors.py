"""Kubernetes label selectors (``matchLabels`` + ``matchExpressions``), evaluated purely."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Any, labels: Any) -> bool:
    """True when ``labels`` satisfy ``selector``; an empty or malformed selector selects nothing."""
    if not isinstance(selector, Mapping) or not selector:
        return False
    have: Mapping[str, Any] = labels if isinstance(labels, Mapping) else {}
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        return False
    if any(have.get(k) != v for k, v in match_labels.items()):
        return False
    expressions = selector.get("matchExpressions") or []
    return isinstance(expressions, list) and all(_expression(e, have) for e in expressions)


def _expression(expr: Any, labels: Mapping[str, Any]) -> bool:
    if not isinstance(expr, Mapping):
        return False
    key, op, values = str(expr.get("key")), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False
