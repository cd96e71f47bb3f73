"""The parts every route document has: ``route`` (its identity) and host lists (:mod:`.loader`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.model import RouteRef
from graylane.config.upstreamblock import K8S_NAME

HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
KIND = re.compile(r"CanaryRoute|HTTPRoute|Gateway")
PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]{0,1023}")
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def parse_route_ref(c: FieldChecker, value: Any, *, schema2: bool) -> RouteRef | None:
    """``route``: namespace, name, uid, generation; schema 2 adds ``kind`` and ``creationTimestamp``."""
    optional = ("kind", "creationTimestamp") if schema2 else ()
    obj = c.obj(value, "route", required=("namespace", "name", "uid", "generation"), optional=optional)
    if obj is None:
        return None
    given = obj.get("kind", "CanaryRoute") if schema2 else "CanaryRoute"  # schema 1: reported as unknown
    kind = c.string(given, "route.kind", pattern=KIND, what="CanaryRoute, HTTPRoute or Gateway")
    created = ""
    if "creationTimestamp" in obj:
        created = c.string(obj["creationTimestamp"], "route.creationTimestamp", max_len=64, pattern=TIMESTAMP,
                           what="an RFC 3339 UTC time (2026-01-02T03:04:05Z)") or ""  # fmt: skip
    namespace = c.string(
        obj.get("namespace"), "route.namespace", max_len=63, pattern=K8S_NAME, what="a DNS label"
    )
    name = c.string(obj.get("name"), "route.name", max_len=253, pattern=K8S_NAME, what="a DNS subdomain")
    uid = c.string(obj.get("uid"), "route.uid", min_len=0, max_len=128)
    generation = c.integer(obj.get("generation"), "route.generation", lo=0, hi=2**53)
    if namespace is None or name is None or uid is None or generation is None or kind is None:
        return None
    return RouteRef(namespace=namespace, name=name, uid=uid, generation=generation, kind=kind,
                    created=created)  # fmt: skip


def parse_hosts(c: FieldChecker, value: Any, path: str = "hosts") -> tuple[str, ...]:
    """Lower-case DNS names (optionally ``*.``), IPv4 literals or ``[IPv6]``; no port, no duplicates."""
    out: list[str] = []
    for i, item in enumerate(c.array(value, path, max_len=100)):
        item_path = join(path, i)
        host = c.string(item, item_path, max_len=253)
        if host is None:
            continue
        if not valid_host(host):
            c.error(
                item_path,
                "must be a lower-case DNS name (optionally *.), an IP address, without port or trailing dot",
            )
        elif host in out:
            c.error(item_path, f"duplicate host {host!r}")
        else:
            out.append(host)
    return tuple(out)


def valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6 and "%" not in host
        except ValueError:
            return False
    return bool(HOST.fullmatch(host))


def parse_path(c: FieldChecker, value: Any, path: str) -> str | None:
    """A request path to match: starts with ``/``, normalised (no ``//``, ``.``/``..`` segments, ``%2e``)."""
    text = c.string(value, path, max_len=1024, pattern=PATH, what="a path starting with /")
    if text is None:
        return None
    segments = text.split("/")[1:]
    if "//" in text or any(s in (".", "..") for s in segments) or "%2e" in text.lower():
        c.error(path, "must be a normalised path (no //, . or .. segments)")
        return None
    return text
