"""What the pod tests share: the route they steer and the JWT signer its ``spec.jwt`` trusts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROUTE = "shop/checkout"


@dataclass(frozen=True)
class Signer:
    """Makes ES256 tokens for the route's ``spec.jwt`` (issuer, audience and key of this test run)."""

    key: ec.EllipticCurvePrivateKey

    @property
    def public_pem(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return der.decode()

    def token(self, **claims: Any) -> str:
        body = {"iss": "https://auth.example.com", "aud": "checkout", "exp": 4_000_000_000} | claims
        return jwt.encode(body, self.key, algorithm="ES256")
