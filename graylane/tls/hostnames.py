"""Which host names a certificate covers (RFC 6125 §6.4), and which table keys an SNI name looks up.

* A DNS-ID equal to the host (case-insensitive, a trailing dot ignored) covers it.
* A wildcard DNS-ID covers exactly one more label: ``*.example.com`` covers ``a.example.com``, never
  ``example.com`` nor ``a.b.example.com``. Only a whole left-most ``*`` label counts (``f*.example.com`` never
  matches), and never directly above a top-level label (``*.com`` covers nothing).
* A route host ``*.example.com`` (any name below) is covered only by the DNS-ID ``*.example.com`` itself.
* IP-address SANs and the subject's common name are never used for DNS names.
"""

from __future__ import annotations

from collections.abc import Iterable


def normal(name: str) -> str:
    return name.lower().rstrip(".")


def usable_wildcard(dns_id: str) -> bool:
    """``*.<at least two labels>`` with no other ``*``."""
    if not dns_id.startswith("*."):
        return False
    rest = dns_id[2:]
    return "*" not in rest and rest.count(".") >= 1 and all(rest.split("."))


def covers(dns_ids: Iterable[str], host: str) -> bool:
    """True when one of the certificate's DNS-IDs covers the route host ``host``."""
    host = normal(host)
    parent = host.partition(".")[2] if not host.startswith("*.") else None
    for dns_id in map(normal, dns_ids):
        if dns_id == host:
            return True
        if parent and usable_wildcard(dns_id) and dns_id[2:] == parent:
            return True
    return False


def uncovered(dns_ids: Iterable[str], hosts: Iterable[str]) -> list[str]:
    """The hosts of ``hosts`` that no DNS-ID covers, in order."""
    ids = tuple(dns_ids)
    return [h for h in hosts if not covers(ids, h)]


def lookup_keys(server_name: str) -> tuple[str, ...]:
    """The SNI table keys to try for ``server_name``, best first: the exact name, then its one-label
    wildcard (``a.example.com`` -> ``*.example.com``)."""
    name = normal(server_name)
    label, dot, parent = name.partition(".")
    if dot and label and "." in parent:
        return (name, "*." + parent)
    return (name,)
