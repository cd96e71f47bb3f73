"""Certificates made in the test (``cryptography``): a CA, leaves with chosen key types, names and dates, and
the Secret-volume layout (``DIR/<secret>/{tls.crt,tls.key}``) the proxy's ``--secrets-dir`` reads.

``python tests/tlscerts.py`` rewrites the bad-certificate corpus in ``tests/bad_inputs/tls/`` (dates fixed,
so the files stay bad and the good parts stay good until 2125).
"""

from __future__ import annotations

import base64
import datetime
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.UTC
FAR_PAST = datetime.datetime(2025, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime.datetime(2125, 1, 1, tzinfo=UTC)
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(kind: str = "ec256") -> PrivateKey:
    """``ec256``, ``ec384``, ``ec521``, ``rsa2048``, ``rsa1024``, ``ed25519``."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"ec256": ec.SECP256R1, "ec384": ec.SECP384R1, "ec521": ec.SECP521R1}[kind]
    return ec.generate_private_key(curve())


def key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _sign_with(key: PrivateKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: PrivateKey

    @classmethod
    def create(cls, name: str = "graylane test CA", *, not_before: datetime.datetime | None = None,
               not_after: datetime.datetime | None = None, issuer: Ca | None = None) -> Ca:  # fmt: skip
        """A root CA, or with ``issuer`` an intermediate signed by it."""
        key = new_key("ec256")
        now = datetime.datetime.now(UTC)
        cert = (
            x509.CertificateBuilder().subject_name(_name(name))
            .issuer_name(issuer.cert.subject if issuer else _name(name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(hours=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign((issuer or cls(None, key)).key, hashes.SHA256())  # type: ignore[arg-type]
        )  # fmt: skip
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        return cert_pem(self.cert)

    def issue(self, names: Sequence[str], *, kind: str = "ec256", key: PrivateKey | None = None,
              not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None,
              san: bool = True) -> tuple[bytes, bytes]:  # fmt: skip
        """A serving certificate for ``names`` (DNS SANs): ``(tls.crt, tls.key)`` PEMs; tls.crt holds the
        leaf, then this CA's certificate when it is an intermediate."""
        key = key or new_key(kind)
        now = datetime.datetime.now(UTC)
        builder = (
            x509.CertificateBuilder().subject_name(_name(names[0] if names else "no-name"))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(hours=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )  # fmt: skip
        if san and names:
            sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
            builder = builder.add_extension(sans, critical=False)
        cert = builder.sign(self.key, _sign_with(self.key))  # type: ignore[arg-type]
        chain = cert_pem(cert) + (self.pem if self.cert.issuer != self.cert.subject else b"")
        return chain, key_pem(key)


def self_signed(
    names: Sequence[str], *, kind: str = "ec256", **dates: datetime.datetime
) -> tuple[bytes, bytes]:
    """A certificate signed by its own key (any key type, ed25519 included)."""
    return _self(names, new_key(kind), **dates)


def _self(names: Sequence[str], key: PrivateKey, **dates: datetime.datetime) -> tuple[bytes, bytes]:
    now = datetime.datetime.now(UTC)
    name = _name(names[0] if names else "self-signed")
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dates.get("not_before") or now - datetime.timedelta(hours=1))
        .not_valid_after(dates.get("not_after") or now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, _sign_with(key))  # type: ignore[arg-type]
    )  # fmt: skip
    return cert_pem(cert), key_pem(key)


def write_secret(directory: Path, name: str, crt: bytes | None, key: bytes | None) -> Path:
    """``directory/name/{tls.crt,tls.key}`` laid out and swapped as the kubelet does a mounted Secret: the
    files are symlinks into ``..data``, itself a symlink to a fresh timestamped folder replaced in one
    ``rename``, so a reader sees the old pair or the new pair, never one of each. None: leave it out."""
    target = directory / name
    target.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix="..", dir=target))
    for file, data in (("tls.crt", crt), ("tls.key", key)):
        if data is not None:
            (fresh / file).write_bytes(data)
            os.chmod(fresh / file, 0o600)
    old = os.readlink(target / "..data") if (target / "..data").is_symlink() else None
    os.symlink(fresh.name, target / "..data_tmp")
    os.replace(target / "..data_tmp", target / "..data")
    for file in ("tls.crt", "tls.key"):
        if not (target / file).is_symlink():
            os.symlink(f"..data/{file}", target / file)
    if old is not None:
        shutil.rmtree(target / old, ignore_errors=True)
    return target


def secret_object(name: str, crt: bytes, key: bytes, *, namespace: str | None = None) -> dict[str, object]:
    """A ``kubernetes.io/tls`` Secret manifest."""
    meta: dict[str, str] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta,
        "data": {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()},
    }  # fmt: skip


def key_fragments(key: bytes) -> list[bytes]:
    """What a leak of ``key`` would look like anywhere: its base64 body lines and the whole base64 of the
    PEM (as a Secret's data carries it)."""
    body = [line for line in key.splitlines() if line and not line.startswith(b"-----")]
    return [*body, base64.b64encode(key)]


# -- the bad-certificate corpus (tests/bad_inputs/tls/) -------------------------------------------------

CORPUS = Path(__file__).resolve().parent / "bad_inputs" / "tls"
HOST = "checkout.example.com"


def _case(name: str, about: str, reason: str, path: str, crt: bytes | None, key: bytes | None,
          hosts: str = HOST) -> None:  # fmt: skip
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, data in (("tls.crt", crt), ("tls.key", key)):
        if data is not None:
            (folder / file).write_bytes(data)
    (folder / "case.txt").write_text(f"about: {about}\nreason: {reason}\npath: {path}\nhosts: {hosts}\n")


def write_corpus() -> None:
    ca = Ca.create(not_before=FAR_PAST, not_after=FAR_FUTURE)
    good = dict(not_before=FAR_PAST, not_after=FAR_FUTURE)
    crt, key = ca.issue([HOST], **good)
    other_key = key_pem(new_key())
    _case(
        "malformed-pem",
        "tls.crt is text, not PEM",
        "malformed",
        "tls.crt",
        b"this is not a certificate\n",
        key,
    )
    _case(
        "truncated-pem",
        "tls.crt is cut off before its END line",
        "malformed",
        "tls.crt",
        crt[: len(crt) // 2],
        key,
    )
    garbage = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    _case(
        "garbage-der",
        "a CERTIFICATE block that holds no certificate",
        "malformed",
        "tls.crt[0]",
        garbage,
        key,
    )
    _case("key-in-crt", "the private key pasted after the certificate", "malformed", "tls.crt[1]",
          crt + key, key)  # fmt: skip
    _case("empty", "both files empty", "malformed", "tls.crt", b"", b"")
    _case("key-mismatch", "the key belongs to another certificate", "key-mismatch", "tls.key", crt, other_key)
    _case("encrypted-key", "a password-protected key", "malformed", "tls.key", crt,
          key_pem(new_key(), password=b"secret"))  # fmt: skip
    for kind, label in (("ed25519", "Ed25519"), ("rsa1024", "RSA 1024"), ("ec521", "ECDSA P-521")):
        c, k = _self([HOST], new_key(kind), **good)
        _case(f"unsupported-{kind}", f"a {label} key", "unsupported-key", "tls.crt[0]", c, k)
    old = dict(not_before=datetime.datetime(2020, 1, 1, tzinfo=UTC),
               not_after=datetime.datetime(2021, 1, 1, tzinfo=UTC))  # fmt: skip
    _case("expired", "expired on 2021-01-01", "expired", "tls.crt[0]", *ca.issue([HOST], **old))
    stale = Ca.create("graylane test intermediate", issuer=ca, **old)
    _case("expired-intermediate", "the leaf is valid, the intermediate after it expired", "expired",
          "tls.crt[1]", *stale.issue([HOST], **good))  # fmt: skip
    later = dict(not_before=datetime.datetime(2120, 1, 1, tzinfo=UTC), not_after=FAR_FUTURE)
    _case("not-yet-valid", "valid from 2120 on", "not-yet-valid", "tls.crt[0]", *ca.issue([HOST], **later))
    _case("host-mismatch", "a valid certificate for another name", "host-mismatch", HOST,
          *ca.issue(["shop.example.net"], **good))  # fmt: skip
    _case("wildcard-one-label", "*.example.com does not cover a name two labels deeper", "host-mismatch",
          "a.b.example.com", *ca.issue(["*.example.com"], **good), hosts="a.b.example.com")  # fmt: skip
    _case("no-san", "the name only in the subject's CN (no subjectAltName)", "host-mismatch", HOST,
          *ca.issue([HOST], san=False, **good))  # fmt: skip
    _case("missing", "no Secret at all", "not-found", "", None, None)


if __name__ == "__main__":
    write_corpus()
    sys.exit(0)
