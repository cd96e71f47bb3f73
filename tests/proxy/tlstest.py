"""Helpers for the HTTPS listener tests: route documents with ``tls``, metrics (the client: tlsclient.py)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from proxytest import route_doc

SECRET = "graylane-tls-shop-checkout"


def tls_route(stable: str, canary: str, hosts: list[str], *, secret: str = SECRET, redirect: bool = False,
              name: str = "checkout", **fields: Any) -> dict[str, Any]:  # fmt: skip
    """A sealed route document for ``hosts`` whose certificate comes from the Secret ``secret``."""
    tls = {"secretName": secret, "hosts": [h for h in hosts if not h.replace(".", "").isdigit()],
           "redirectHTTP": redirect}  # fmt: skip
    return route_doc(stable, canary, name=name, hosts=hosts, tls=tls, **fields)


async def metric(session: aiohttp.ClientSession, admin: str, name: str, **labels: str) -> float | None:
    async with session.get(admin + "/metrics") as resp:
        text = await resp.text()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if labels else ''} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None
