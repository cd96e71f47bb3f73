"""Micro-benchmark of the routing core: microseconds per decide() and its parts.

Scenario ("full routing" of issue 3): three header rules that miss, a CIDR rule that misses, a claim rule on
a cached, verified RS256 JWT that misses, then the sticky split on ``jwt:sub``. Headers are aiohttp's
``CIMultiDictProxy`` as the proxy passes them. Run: ``.venv/bin/python bench/core_bench.py``.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict, CIMultiDictProxy

from graylane.config.document import canonical_json, load_route_document, seal
from graylane.jwt.verifier import JwtVerifier, bearer_token
from graylane.routing.decide import RouteTable, decide
from graylane.routing.request import RequestView
from graylane.routing.sticky import bucket

NOW = time.time()
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
TOKEN = jwt.encode(
    {"sub": "u-1001", "iss": "https://auth.example.com", "aud": "shop", "exp": NOW + 3600, "role": ["user"]},
    KEY,
    algorithm="RS256",
)

DOC = seal(
    {
        "schemaVersion": 1,
        "route": {"namespace": "shop", "name": "checkout", "uid": "u", "generation": 1},
        "hosts": ["checkout.example.com"],
        "pathPrefix": "/",
        "stable": "v1",
        "canary": "v2",
        "upstreams": {"v1": {"url": "http://127.0.0.1:9001"}, "v2": {"url": "http://127.0.0.1:9002"}},
        "rules": [
            {"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-Canary", "exact": "true"}]}},
            {"name": "out", "to": "stable", "match": {"headers": [{"name": "X-Canary", "exact": "false"}]}},
            {"name": "beta-h", "to": "canary", "match": {"headers": [{"name": "X-Beta", "regex": "yes|1"}]}},
            {"name": "office", "to": "canary", "match": {"sourceCIDRs": ["203.0.113.0/24", "2001:db8::/32"]}},
            {"name": "beta", "to": "canary", "match": {"jwtClaims": [{"claim": "role", "in": ["beta"]}]}},
        ],
        "weight": 25,
        "salt": "shop/checkout",
        "sticky": {"keys": ["jwt:sub", "header:X-User-Id", "sourceIP"]},
        "jwt": {"issuer": "https://auth.example.com", "audiences": ["shop"], "algorithms": ["RS256"],
                "publicKeys": [PEM.decode()]},
    }
)  # fmt: skip


def per_call(fn: Callable[[], Any], number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    config = load_route_document(DOC)
    table = RouteTable.build([config])
    assert config.jwt is not None
    verifier = JwtVerifier(config.jwt)
    headers = CIMultiDictProxy(
        CIMultiDict(
            {
                "Host": "checkout.example.com",
                "User-Agent": "wrk",
                "Accept": "*/*",
                "Authorization": f"Bearer {TOKEN}",
                "Cookie": "session=abc; theme=dark",
            }
        )
    )

    def make_view() -> RequestView:
        token = bearer_token(headers.get("authorization"))
        return RequestView(
            method="GET",
            host="checkout.example.com",
            path="/cart",
            headers=headers,
            client_ip="198.51.100.7",
            claims=(lambda: verifier.verify(token, now=NOW)) if token else None,
        )

    view = make_view()
    decision = decide(table, view, 0.5)
    assert decision is not None and decision.reason == "sticky", decision
    fresh = 100_000
    results = {
        "decide, full routing (view reused)": per_call(lambda: decide(table, view, 0.5), 200_000),
        "view + decide, full routing (cached JWT)": per_call(lambda: decide(table, make_view(), 0.5), fresh),
        "JWT verify, cached": per_call(lambda: verifier.verify(TOKEN, now=NOW), 200_000),
        "JWT verify, uncached RS256": per_call(lambda: verifier.verify_detailed(TOKEN, now=NOW), 500),
        "sticky bucket (xxh3)": per_call(lambda: bucket("shop/checkout", "u-1001"), 200_000),
        "load_route_document (this route)": per_call(lambda: load_route_document(canonical_json(DOC)), 500),
    }  # fmt: skip
    width = max(len(k) for k in results)
    for name, micros in results.items():
        print(f"{name:<{width}}  {micros:9.2f} µs")


if __name__ == "__main__":
    main()
