"""Client IP resolution: forwarding headers only from trusted proxies (reliability.md §4.5, E3)."""

from __future__ import annotations

import pytest

from graylane.routing.clientip import ClientIpResolver, forwarded_for, parse_address

RESOLVER = ClientIpResolver(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"])

CASES = [
    # (peer, X-Forwarded-For, Forwarded, expected)
    # --- untrusted peer: headers ignored ---
    ("spoof-from-untrusted", "127.0.0.2", "10.0.0.5", None, "127.0.0.2"),
    ("spoof-forwarded-from-untrusted", "198.51.100.1", None, "for=1.2.3.4", "198.51.100.1"),
    ("untrusted-no-headers", "198.51.100.1", None, None, "198.51.100.1"),
    # --- trusted peer ---
    ("trusted-single-hop", "127.0.0.1", "203.0.113.9", None, "203.0.113.9"),
    ("first-untrusted-from-right", "127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.5", None, "203.0.113.9"),
    ("client-prepends-spoof", "127.0.0.1", "1.1.1.1, 203.0.113.9", None, "203.0.113.9"),
    ("all-hops-trusted-leftmost", "127.0.0.1", "10.0.0.9, 10.0.0.5", None, "10.0.0.9"),
    ("spaces-and-commas", "127.0.0.1", "  203.0.113.9 ,10.0.0.5  ", None, "203.0.113.9"),
    ("empty-xff-uses-peer", "127.0.0.1", "   ", None, "127.0.0.1"),
    ("v4-with-port", "127.0.0.1", "203.0.113.9:5555", None, "203.0.113.9"),
    ("v6-bracket-port", "127.0.0.1", "[2001:db8::1]:443", None, "2001:db8::1"),
    ("v6-plain", "127.0.0.1", "2001:db8::1", None, "2001:db8::1"),
    ("v6-zone-dropped", "127.0.0.1", "fe80::1%eth0", None, "fe80::1"),
    ("v4-mapped-hop", "127.0.0.1", "::ffff:203.0.113.9", None, "203.0.113.9"),
    ("v4-mapped-peer-is-trusted", "::ffff:127.0.0.1", "203.0.113.9", None, "203.0.113.9"),
    ("trusted-v6-peer", "fd00::1", "203.0.113.9", None, "203.0.113.9"),
    # --- malformed: fall back to the peer, never raise ---
    ("unknown-hop", "127.0.0.1", "unknown", None, "127.0.0.1"),
    ("obfuscated-hex", "127.0.0.1", "0x7f.1", None, "127.0.0.1"),
    ("obfuscated-integer", "127.0.0.1", "2130706433", None, "127.0.0.1"),
    ("obfuscated-leading-zero", "127.0.0.1", "010.0.0.1", None, "127.0.0.1"),
    ("garbage-right-of-client", "127.0.0.1", "203.0.113.9, <script>", None, "127.0.0.1"),
    ("garbage-left-of-client-not-read", "127.0.0.1", "<script>, 203.0.113.9", None, "203.0.113.9"),
    ("empty-element", "127.0.0.1", "203.0.113.9,,", None, "127.0.0.1"),
    ("bracket-without-close", "127.0.0.1", "[2001:db8::1", None, "127.0.0.1"),
    ("long-chain-reads-right-end", "127.0.0.1", "9.9.9.9, " * 5000 + "203.0.113.9", None, "203.0.113.9"),
    # --- the default believes X-Forwarded-For only: a Forwarded header is the client's ---
    ("default-ignores-forwarded", "127.0.0.1", None, "for=203.0.113.9", "127.0.0.1"),
    ("default-xff-with-forwarded", "127.0.0.1", "203.0.113.9", "for=6.6.6.6", "203.0.113.9"),
    # --- a malformed peer is returned as is (nothing else to trust) ---
    ("peer-not-an-ip", "not-an-ip", "203.0.113.9", None, "not-an-ip"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("peer", "xff", "fwd", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_resolve(peer: str, xff: str | None, fwd: str | None, expected: str) -> None:
    assert RESOLVER.resolve(peer, xff, fwd) == expected


FORWARDED = ClientIpResolver(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"], header="forwarded")
FORWARDED_CASES = [
    # (name, peer, X-Forwarded-For, Forwarded, expected) with --client-ip-header forwarded
    ("forwarded-for", "127.0.0.1", None, "for=203.0.113.9;proto=https", "203.0.113.9"),
    ("forwarded-quoted-v6", "127.0.0.1", None, 'for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
    ("forwarded-chain", "127.0.0.1", None, "for=6.6.6.6, for=203.0.113.9;by=10.0.0.1, for=10.0.0.5",
     "203.0.113.9"),
    ("forwarded-case-insensitive", "127.0.0.1", None, "For=203.0.113.9", "203.0.113.9"),
    ("forwarded-obfuscated", "127.0.0.1", None, "for=_hidden", "127.0.0.1"),
    ("forwarded-unknown", "127.0.0.1", None, "for=unknown", "127.0.0.1"),
    ("forwarded-without-for", "127.0.0.1", None, "proto=https", "127.0.0.1"),
    ("forwarded-quoted-comma", "127.0.0.1", None, 'for="1.2.3.4,5.6.7.8"', "127.0.0.1"),
    ("unbalanced-quote-swallows-the-proxy-element", "127.0.0.1", None,
     'for=203.0.113.5;by="x, for=198.51.100.7', "127.0.0.1"),
    ("repeated-for", "127.0.0.1", None, "for=198.51.100.7;for=203.0.113.5", "127.0.0.1"),
    ("bytes-after-quote", "127.0.0.1", None, 'for="203.0.113.5"x, for=198.51.100.7', "127.0.0.1"),
    ("xff-is-the-clients", "127.0.0.1", "203.0.113.5", "for=198.51.100.7", "198.51.100.7"),
    ("xff-alone-ignored", "127.0.0.1", "203.0.113.5", None, "127.0.0.1"),
    ("untrusted-peer", "198.51.100.1", None, "for=1.2.3.4", "198.51.100.1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("peer", "xff", "fwd", "expected"), [c[1:] for c in FORWARDED_CASES], ids=[c[0] for c in FORWARDED_CASES]
)
def test_resolve_from_forwarded(peer: str, xff: str | None, fwd: str | None, expected: str) -> None:
    assert FORWARDED.resolve(peer, xff, fwd) == expected


def test_an_unknown_client_ip_header_is_refused() -> None:
    with pytest.raises(ValueError, match="header must be one of"):
        ClientIpResolver([], header="x-real-ip")


def test_no_trusted_proxies_means_headers_never_count() -> None:
    assert ClientIpResolver([]).resolve("127.0.0.1", "203.0.113.9", "for=1.2.3.4") == "127.0.0.1"


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("::ffff:10.1.1.1", True),
        ("fd00::5", True),
        ("x", False),
        (None, False),
    ],
)
def test_trusted(peer: str | None, trusted: bool) -> None:
    assert RESOLVER.trusted(peer) is trusted


def test_forwarded_for_parsing() -> None:
    assert forwarded_for('for=a;by=b, proto=x, for="c;d"') == ["a", "", "c;d"]
    assert forwarded_for('for=a;by="b') is None


@pytest.mark.parametrize("text", ["", "1.2.3.4.5", "[::1]x", "a" * 100, "1.2.3.4:99:1"])
def test_parse_address_rejects(text: str) -> None:
    assert parse_address(text) is None
