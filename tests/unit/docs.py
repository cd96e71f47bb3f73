"""Valid route documents for the core's tests (plain dicts; tests mutate copies)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.config.document import ConfigError, load_route_document, seal


def base_document(**overrides: Any) -> dict[str, Any]:
    """A complete, valid, unsealed route document; keyword overrides replace top-level keys."""
    doc: dict[str, Any] = {
        "schemaVersion": 1,
        "route": {"namespace": "shop", "name": "checkout", "uid": "5f1c-1", "generation": 3},
        "hosts": ["checkout.example.com"],
        "pathPrefix": "/",
        "stable": "checkout-v1",
        "canary": "checkout-v2",
        "upstreams": {
            "checkout-v1": {
                "url": "http://checkout-v1.shop.svc:8080",
                "metadata": {"version": "v1"},
                "timeoutSeconds": 30,
                "maxConnections": 256,
            },
            "checkout-v2": {
                "url": "http://127.0.0.1:9002",
                "metadata": {"version": "v2"},
                "timeoutSeconds": 30,
                "maxConnections": 256,
            },
        },
        "rules": [
            {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}}
        ],
        "versionRouting": None,
        "weight": 5,
        "salt": "shop/checkout",
        "sticky": {"keys": ["header:X-User-Id", "cookie:session", "sourceIP"]},
        "jwt": None,
        "requestHeaders": {
            "canary": {"set": {"X-Feature-New-Checkout": "on"}},
            "stable": {"set": {"X-Feature-New-Checkout": "off"}},
        },
    }
    doc.update(copy.deepcopy(overrides))
    return doc


def sealed_document(**overrides: Any) -> dict[str, Any]:
    return seal(base_document(**overrides))


def http_document(*rules: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A valid, unsealed schema-2 document of a Gateway API route (``httpRules``); default one rule to v1."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "route": {
            "namespace": "shop",
            "name": "web",
            "uid": "u-web",
            "generation": 1,
            "kind": "HTTPRoute",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "hosts": [],
        "listeners": [{"port": 80, "hosts": []}],
        "preserveHost": True,
        "upstreams": {
            "v1": {"url": "http://web-v1.shop.svc:8080"},
            "v2": {"url": "http://web-v2.shop.svc:8080"},
        },
        "httpRules": list(rules) or [http_rule()],
        "salt": "shop/web",
    }
    doc.update(copy.deepcopy(overrides))
    return doc


def http_rule(
    *matches: dict[str, Any], backends: list[tuple[str | None, int]] | None = None, **extra: Any
) -> dict[str, Any]:
    """One ``httpRules`` entry; matches default to ``PathPrefix /``, backends to ``v1`` weight 1."""
    rule: dict[str, Any] = {
        "matches": list(matches) or [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backends": [
            {"upstream": u, "weight": w} for u, w in (backends if backends is not None else [("v1", 1)])
        ],
    }
    rule.update(extra)
    return rule


def prefix(value: str, **conditions: Any) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": value}, **conditions}


def exact(value: str, **conditions: Any) -> dict[str, Any]:
    return {"path": {"type": "Exact", "value": value}, **conditions}


def load(doc: dict[str, Any]) -> Any:
    """The document sealed and loaded as a proxy loads it."""
    return load_route_document(seal(doc))


def errors_of(doc: dict[str, Any]) -> list[str]:
    """The field paths the loader refuses ``doc`` with."""
    with pytest.raises(ConfigError) as caught:
        load(doc)
    return [e.path for e in caught.value.errors]
