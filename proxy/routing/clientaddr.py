"""The client's address as the proxy forwards and routes on it.

The forwarding header named by ``--client-ip-header`` (``X-Forwarded-For`` by default, or ``Forwarded``)
counts only when the TCP peer is a trusted proxy (``--trusted-proxy``); the core's
:class:`graylane.routing.clientip.ClientIpResolver` then walks it right to left. The other header is never
read for the client IP. From an untrusted peer the peer itself is the client and no header is even parsed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from graylane.proxy.request import ClientRequest
from graylane.proxy.upstream.headers import Forwarding, IPAddress

from graylane.routing.clientip import ClientIpResolver
from graylane.routing.request import ip_key

_CACHE_MAX = 4096


class ClientAddress:
    def __init__(
        self, trusted_cidrs: Sequence[str], *, scheme: bytes = b"http", header: str = "x-forwarded-for"
    ) -> None:
        self._any_trusted = bool(trusted_cidrs)
        self._resolver = ClientIpResolver(list(trusted_cidrs), header=header)
        self._header = header
        self._trusted: dict[str, bool] = {}
        self._parsed: dict[str, IPAddress | str] = {}
        self._by_peer: dict[str, Forwarding] = {}
        self._scheme = scheme

    def is_trusted(self, peer: str) -> bool:
        known = self._trusted.get(peer)
        if known is None:
            if len(self._trusted) >= _CACHE_MAX:
                self._trusted.clear()
            known = self._trusted[peer] = self._resolver.trusted(peer)
        return known

    def parsed(self, ip: str) -> IPAddress | str:
        """``ip`` as an address object, parsed once per distinct address (the router's CIDR and country
        checks then skip string parsing); the text itself when it does not parse."""
        known = self._parsed.get(ip)
        if known is None:
            if len(self._parsed) >= _CACHE_MAX:
                self._parsed.clear()
            try:
                known = ipaddress.ip_address(ip)
            except ValueError:
                known = ip
            self._parsed[ip] = known
        return known

    def forwarding(self, request: ClientRequest) -> Forwarding:
        """The forwarding facts of a request: shared per peer unless a trusted proxy sent a chain."""
        peer = request.remote or ""
        trusted = self._any_trusted and self.is_trusted(peer)
        if trusted:
            chain = request.headers.getall(self._header, None)
            if chain:
                joined = ", ".join(chain)
                if self._header == "forwarded":
                    client = self._resolver.resolve(peer, None, joined)
                else:
                    client = self._resolver.resolve(peer, joined, None)
                return self._make(peer, client, trusted)
        known = self._by_peer.get(peer)
        if known is None:
            if len(self._by_peer) >= _CACHE_MAX:
                self._by_peer.clear()
            known = self._by_peer[peer] = self._make(peer, peer, trusted)
        return known

    def _make(self, peer: str, client: str, trusted: bool) -> Forwarding:
        parsed = self.parsed(client)
        return Forwarding(
            peer=peer.encode("ascii", "replace"),
            client_ip=client.encode("ascii", "replace"),
            trusted_peer=trusted,
            scheme=self._scheme,
            client=parsed,
            client_key=ip_key(parsed),
        )
