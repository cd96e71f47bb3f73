"""The client's IP address, taking ``X-Forwarded-For`` / ``Forwarded`` only from trusted proxies.

Rules (reliability.md §4.5, E3):
- The TCP peer is the client unless the peer is inside a trusted CIDR.
- From a trusted peer, exactly one header is believed, the one the proxy is configured with
  (``--client-ip-header``, as nginx's ``real_ip_header``): ``X-Forwarded-For`` (the default; several
  headers are joined with ", " in order) or ``Forwarded`` (RFC 7239 ``for=``). The other one is never
  read: a trusted proxy that appends only one of them passes a client-forged copy of the other through
  untouched, so no "which one wins" rule is safe for both kinds of front proxy.
- ``Forwarded`` is parsed strictly (``routing.forwarded``): an unbalanced quote or a repeated parameter
  makes the whole header unparseable, and then the peer is the client (never a guessed hop).
- The chain is walked from the right; the first hop that is not trusted is the client. If every hop is
  trusted, the left-most hop is.
- Any malformed hop met on the walk (``unknown``, obfuscated ``0x7f.1``/``2130706433``/``010.0.0.1``,
  garbage) makes the whole header untrusted: the answer is the peer. Never raises. Only the right-most
  64 hops of a longer chain are read.
- Addresses are normalised: IPv4-mapped IPv6 becomes IPv4, ``[v6]:port`` and ``v4:port`` lose the port,
  zone ids are dropped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from graylane.routing.forwarded import forwarded_for_hops
from graylane.routing.matchers import CidrSet
from graylane.routing.request import ip_key

MAX_HOPS = 64
CLIENT_IP_HEADERS = ("x-forwarded-for", "forwarded")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """One hop as written in XFF/Forwarded/peer -> address, or None when malformed."""
    value = text.strip().strip('"')
    if not value or len(value) > 64:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (end + 1 < len(value) and not value[end + 1 :].startswith(":")):
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    value = value.partition("%")[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def forwarded_for(header: str) -> list[str] | None:
    """The ``for=`` values of a ``Forwarded`` header, in order (``""`` for a hop without one); None when
    the header does not parse (RFC 7239, strictly: see ``graylane.routing.forwarded``)."""
    return forwarded_for_hops(header)


class ClientIpResolver:
    """Built once from the proxy's ``--trusted-proxy`` CIDRs; :meth:`resolve` per request."""

    def __init__(self, trusted_cidrs: Iterable[str], *, header: str = "x-forwarded-for") -> None:
        if header not in CLIENT_IP_HEADERS:
            raise ValueError(f"header must be one of {', '.join(CLIENT_IP_HEADERS)}, not {header!r}")
        self.header = header
        self.trusted_cidrs = tuple(trusted_cidrs)
        self._trusted = CidrSet(self.trusted_cidrs)

    def trusted(self, peer: str | Address | None) -> bool:
        """Is this address (the TCP peer) a trusted proxy?"""
        if peer is None:
            return False
        addr = peer if not isinstance(peer, str) else parse_address(peer)
        return addr is not None and ip_key(addr) in self._trusted

    def resolve(self, peer: str, xff: str | None, forwarded: str | None) -> str:
        """The client IP as a string (the normalised peer when the headers may not be used)."""
        peer_addr = parse_address(peer)
        peer_text = str(peer_addr) if peer_addr is not None else peer
        if peer_addr is None or not self._trusted or ip_key(peer_addr) not in self._trusted:
            return peer_text
        if self.header == "forwarded":
            if forwarded is None or not forwarded.strip():
                return peer_text
            parsed = forwarded_for(forwarded)
            if parsed is None:
                return peer_text
            hops = parsed
        elif xff is not None and xff.strip():
            hops = xff.split(",")
        else:
            return peer_text
        if len(hops) > MAX_HOPS:
            hops = hops[-MAX_HOPS:]
        leftmost = peer_text
        for hop in reversed(hops):
            addr = parse_address(hop)
            if addr is None:
                return peer_text
            if ip_key(addr) not in self._trusted:
                return str(addr)
            leftmost = str(addr)
        return leftmost
