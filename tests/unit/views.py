"""Helpers to build RequestViews in tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graylane.routing.request import Headers, RequestView


def view(
    *,
    headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    method: str = "GET",
    host: str = "checkout.example.com",
    path: str = "/",
    query: str = "",
    client_ip: str | None = "198.51.100.7",
    claims: Mapping[str, Any] | None = None,
    trusted_peer: bool = False,
) -> RequestView:
    return RequestView(
        method=method,
        host=host,
        path=path,
        query_string=query,
        headers=Headers(headers or {}),
        client_ip=client_ip,
        claims=(lambda: claims) if claims is not None else None,
        trusted_peer=trusted_peer,
    )
