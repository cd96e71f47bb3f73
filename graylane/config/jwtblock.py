"""Validation of a route document's ``jwt`` settings (part of :mod:`graylane.config.loader`)."""

from __future__ import annotations

import re
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.model import JwtSettings, SecretRef
from graylane.config.upstreamblock import K8S_NAME, split_url


def parse_jwt(c: FieldChecker, value: Any) -> JwtSettings | None:
    from graylane.jwt import algorithms as jwtkeys  # cryptography only for documents that use JWT

    obj = c.obj(value, "jwt", required=("issuer", "algorithms"),
                optional=("audiences", "leewaySeconds", "publicKeys", "jwksURL", "secretRef"))  # fmt: skip
    if obj is None:
        return None
    before = len(c.errors)
    issuer = c.string(obj.get("issuer"), "jwt.issuer", max_len=1024)
    audiences = c.strings(obj.get("audiences", []), "jwt.audiences", max_len=100)
    algorithms = c.strings(obj.get("algorithms"), "jwt.algorithms", min_len=1, max_len=10)
    for i, alg in enumerate(algorithms):
        if alg not in jwtkeys.ALLOWED_ALGORITHMS:
            c.error(
                join("jwt.algorithms", i), f"must be one of {', '.join(sorted(jwtkeys.ALLOWED_ALGORITHMS))}"
            )
    leeway = c.integer(obj.get("leewaySeconds", 30), "jwt.leewaySeconds", lo=0, hi=60)
    public_keys = _public_keys(c, obj.get("publicKeys", []), algorithms)
    jwks_url = None
    if obj.get("jwksURL") is not None:
        jwks_url = c.string(obj["jwksURL"], "jwt.jwksURL", max_len=2048)
        if jwks_url is not None:
            split_url(c, jwks_url, "jwt.jwksURL")
    secret_ref = _secret_ref(c, obj["secretRef"]) if obj.get("secretRef") is not None else None
    if any(a in jwtkeys.HMAC_ALGS for a in algorithms) and secret_ref is None:
        c.error("jwt.secretRef", "HS* algorithms need a secretRef (secrets never go into the document)")
    if any(a in jwtkeys.ASYMMETRIC_ALGS for a in algorithms) and not public_keys and jwks_url is None:
        c.error("jwt", "asymmetric algorithms need publicKeys or jwksURL")
    if len(c.errors) != before or issuer is None or leeway is None:
        return None
    return JwtSettings(issuer=issuer, audiences=audiences, algorithms=algorithms, leeway_seconds=leeway,
                       public_keys=public_keys, jwks_url=jwks_url, secret_ref=secret_ref)  # fmt: skip


def _public_keys(c: FieldChecker, value: Any, algorithms: tuple[str, ...]) -> tuple[str, ...]:
    from graylane.jwt import algorithms as jwtkeys

    out: list[str] = []
    for i, item in enumerate(c.array(value, "jwt.publicKeys", max_len=20)):
        path = join("jwt.publicKeys", i)
        pem = c.string(item, path, max_len=16384)
        if pem is None:
            continue
        try:
            key = jwtkeys.load_public_key(pem)
        except ValueError as exc:
            c.error(path, str(exc))
            continue
        if algorithms and not jwtkeys.fitting_algorithms(key, algorithms):
            c.error(path, f"key type does not fit any of the algorithms {list(algorithms)} (or is too short)")
            continue
        out.append(pem)
    return tuple(out)


def _secret_ref(c: FieldChecker, value: Any) -> SecretRef | None:
    obj = c.obj(value, "jwt.secretRef", required=("name", "key"))
    if obj is None:
        return None
    name = c.string(
        obj.get("name"), "jwt.secretRef.name", max_len=253, pattern=K8S_NAME, what="a DNS subdomain"
    )
    key = c.string(
        obj.get("key"),
        "jwt.secretRef.key",
        max_len=253,
        pattern=re.compile(r"[-._a-zA-Z0-9]+"),
        what="a Secret data key",
    )
    if name is None or key is None:
        return None
    return SecretRef(name=name, key=key)
