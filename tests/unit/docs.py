"""Valid route documents for the core's tests (plain dicts; tests mutate copies)."""

from __future__ import annotations

import copy
from typing import Any

from graylane.config.document import seal


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
