"""A ``kubernetes.io/tls`` Secret's ``tls.crt`` + ``tls.key``, parsed and checked once.

:func:`parse_certificate` returns a :class:`Certificate` or raises one :class:`CertificateError` that lists
every problem with a field path (``tls.crt[1]`` is the second PEM block of the chain) and carries one
low-cardinality ``reason`` for ``graylane_tls_rejected_total{reason}`` and the route's Ready condition:

* ``malformed``: not PEM, a block that is not a ``CERTIFICATE`` in ``tls.crt`` (a private key pasted into
  it included), an unparseable certificate, not exactly one unencrypted private key in ``tls.key``;
* ``unsupported-key``: anything but RSA of 2048-8192 bits or ECDSA on P-256 / P-384 (what every client
  and Mozilla's "intermediate" profile accept);
* ``key-mismatch``: the private key is not the leaf certificate's;
* ``not-yet-valid`` / ``expired``: a certificate of the chain outside its validity at ``now`` (the clock is a
  parameter).

The leaf is the first certificate; the rest is the chain as the server sends it (not verified here: the
proxy has no trust store for its own certificates). Messages name certificates by subject and dates, never
by key material; :class:`Certificate`'s ``repr`` leaves both PEMs out.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from graylane.config.model import FieldError

CRT, KEY = "tls.crt", "tls.key"
MAX_CHAIN = 10
MAX_PEM_BYTES = 64 * 1024
CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
RSA_BITS = (2048, 8192)
KEY_BLOCKS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"})
REASONS = ("malformed", "unsupported-key", "key-mismatch", "not-yet-valid", "expired")
"""Most severe first: the reason of an error list is the first of these that occurs."""
NOT_FOUND, HOST_MISMATCH = "not-found", "host-mismatch"
"""Reasons about a certificate's place rather than its content: no Secret, names it does not cover."""
CONDITIONS = {
    "malformed": "InvalidTLS", "unsupported-key": "InvalidTLS", "key-mismatch": "InvalidTLS",
    "not-yet-valid": "InvalidTLS", "expired": "TLSCertificateExpired", NOT_FOUND: "TLSSecretNotFound",
    HOST_MISMATCH: "TLSHostMismatch",
}  # fmt: skip
"""A rejection ``reason`` -> the CanaryRoute's ``Ready=False`` condition reason."""
_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 ]{1,40})-----")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str
    error: FieldError


class CertificateError(ValueError):
    """The certificate cannot be served; ``errors`` has every problem, ``reason`` the worst one's."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        self.errors = [p.error for p in self.problems]
        self.reason = min((p.reason for p in self.problems), key=REASONS.index)
        super().__init__("; ".join(str(e) for e in self.errors[:5]))


@dataclass(frozen=True, slots=True)
class Certificate:
    """A servable certificate: the PEMs as given plus what the proxy and the operator read off them."""

    chain_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    dns_names: tuple[str, ...]
    subject: str
    key_type: str  # "ECDSA P-256", "RSA 2048"
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str  # sha256 of the leaf's DER, hex


def parse_certificate(crt: bytes, key: bytes, *, now: datetime.datetime) -> Certificate:
    """Parse and check ``tls.crt`` and ``tls.key`` as of ``now`` (timezone-aware)."""
    problems: list[Problem] = []
    chain = _chain(crt, problems)
    private = _private_key(key, problems)
    leaf = chain[0] if chain else None
    key_type = _key_type(_public_key(leaf), f"{CRT}[0]", problems) if leaf is not None else None
    if leaf is not None and key_type is not None and private is not None:
        _match(leaf, private, problems)
    for i, cert in enumerate(chain):
        _validity(cert, f"{CRT}[{i}]", now, problems)
    names = _dns_names(leaf, problems) if leaf is not None else ()
    if problems or leaf is None or key_type is None or private is None:
        raise CertificateError(problems)
    return Certificate(
        chain_pem=crt,
        key_pem=key,
        dns_names=names,
        subject=leaf.subject.rfc4514_string(),
        key_type=key_type,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


def _problem(reason: str, path: str, message: str) -> Problem:
    return Problem(reason, FieldError(path, message))


def _blocks(data: bytes, path: str, problems: list[Problem]) -> list[tuple[str, bytes]]:
    if not data.strip():
        problems.append(_problem("malformed", path, "is empty"))
        return []
    if len(data) > MAX_PEM_BYTES:
        problems.append(_problem("malformed", path, f"is larger than {MAX_PEM_BYTES} bytes"))
        return []
    found: list[tuple[str, bytes]] = []
    markers = list(_MARKER.finditer(data))  # one linear scan; BEGIN and END must alternate and agree
    for begin, end in zip(markers[::2], markers[1::2], strict=False):
        if begin.group(1) != b"BEGIN" or end.group(1) != b"END" or begin.group(2) != end.group(2):
            break
        found.append((begin.group(2).decode("ascii"), data[begin.start() : end.end()]))
    if not markers:
        problems.append(_problem("malformed", path, "holds no PEM block (-----BEGIN ...-----)"))
    elif len(markers) % 2 or len(found) * 2 != len(markers):
        problems.append(_problem("malformed", path, "has a PEM block without its matching END line"))
        return []
    return found


def _chain(crt: bytes, problems: list[Problem]) -> list[x509.Certificate]:
    blocks = _blocks(crt, CRT, problems)
    if len(blocks) > MAX_CHAIN:
        problems.append(_problem("malformed", CRT, f"holds {len(blocks)} blocks; at most {MAX_CHAIN}"))
        return []
    chain: list[x509.Certificate] = []
    for i, (kind, pem) in enumerate(blocks):
        path = f"{CRT}[{i}]"
        if kind != "CERTIFICATE":
            problems.append(_problem("malformed", path, f"is a {kind} block, not a certificate"))
            continue
        try:
            chain.append(x509.load_pem_x509_certificate(pem))
        except ValueError as exc:
            problems.append(_problem("malformed", path, f"is not a valid certificate ({_short(exc)})"))
    return chain if len(chain) == len(blocks) else []


def _private_key(key: bytes, problems: list[Problem]) -> PrivateKey | None:
    blocks = _blocks(key, KEY, problems)
    if not blocks:
        return None
    kinds = [kind for kind, _ in blocks]
    if len(blocks) != 1 or kinds[0] not in KEY_BLOCKS:
        shown = ", ".join(kinds)
        encrypted = " (encrypted keys are not supported)" if "ENCRYPTED PRIVATE KEY" in kinds else ""
        problems.append(_problem("malformed", KEY, f"must be one private key, found: {shown}{encrypted}"))
        return None
    try:
        loaded = serialization.load_pem_private_key(blocks[0][1], password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        problems.append(_problem("malformed", KEY, f"is not a valid unencrypted private key ({_short(exc)})"))
        return None
    if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        problems.append(_unsupported(KEY, _kind(loaded)))
        return None
    return loaded


def _key_type(public: object, path: str, problems: list[Problem]) -> str | None:
    if isinstance(public, rsa.RSAPublicKey):
        if RSA_BITS[0] <= public.key_size <= RSA_BITS[1]:
            return f"RSA {public.key_size}"
        problems.append(_unsupported(path, f"RSA {public.key_size}"))
        return None
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve = CURVES.get(public.curve.name)
        if curve is not None:
            return f"ECDSA {curve}"
        problems.append(_unsupported(path, f"ECDSA {public.curve.name}"))
        return None
    problems.append(_unsupported(path, public if isinstance(public, str) else _kind(public)))
    return None


def _unsupported(path: str, what: str) -> Problem:
    allowed = f"RSA {RSA_BITS[0]}-{RSA_BITS[1]} bits or ECDSA P-256/P-384"
    return _problem("unsupported-key", path, f"has a {what} key; supported: {allowed}")


def _match(leaf: x509.Certificate, private: PrivateKey, problems: list[Problem]) -> None:
    if _key_type(private.public_key(), KEY, problems) is None:
        return
    if _spki(leaf.public_key()) != _spki(private.public_key()):  # type: ignore[arg-type]
        problems.append(_problem("key-mismatch", KEY, f"is not the key of the certificate {_who(leaf)}"))


def _kind(key: object) -> str:
    """``Ed25519`` for an ``Ed25519PrivateKey`` / ``Ed25519PublicKey`` (and so on)."""
    return type(key).__name__.lstrip("_").removesuffix("PrivateKey").removesuffix("PublicKey")


def _spki(public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _validity(cert: x509.Certificate, path: str, now: datetime.datetime, problems: list[Problem]) -> None:
    if now < cert.not_valid_before_utc:
        since = cert.not_valid_before_utc.isoformat()
        problems.append(_problem("not-yet-valid", path, f"{_who(cert)} is not valid before {since}"))
    elif now > cert.not_valid_after_utc:
        until = cert.not_valid_after_utc.isoformat()
        problems.append(_problem("expired", path, f"{_who(cert)} expired at {until}"))


def _public_key(cert: x509.Certificate) -> object:
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"unknown ({_short(exc)})"


def _dns_names(cert: x509.Certificate, problems: list[Problem]) -> tuple[str, ...]:
    """The leaf's DNS-IDs (subjectAltName dNSName entries), lower-cased, without a trailing dot."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    except ValueError as exc:  # cryptography parses extensions lazily
        problems.append(_problem("malformed", f"{CRT}[0]", f"has unreadable extensions ({_short(exc)})"))
        return ()
    return tuple(dict.fromkeys(n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)))


def _who(cert: x509.Certificate) -> str:
    return repr(cert.subject.rfc4514_string()[:200] or "(empty subject)")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
