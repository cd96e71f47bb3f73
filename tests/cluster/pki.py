"""Certificates and kubeconfigs for the test control plane (``cryptography``, EC P-256 keys).

A private CA signs the apiserver's serving certificate (SANs 127.0.0.1, localhost and the in-cluster
names) and client certificates (``O=system:masters`` for the admin and the controller manager).
The service-account signing key is a separate EC key.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", "10.0.0.1", "10.245.0.1")  # loopback, the `kubernetes` Service, the node IP
# Client identities of the node's components: file stem -> (CN, O). kube-proxy and kube-scheduler get
# Kubernetes' built-in bindings for their user names, the kubelet the Node authorizer's rules.
NODE_CLIENTS = {
    "kubelet": ("system:node:graylane-node", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),
    "kube-scheduler": ("system:kube-scheduler", None),
    "coredns": ("graylane:coredns", None),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
}
VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files one control plane uses."""

    ca_crt: Path
    serving_crt: Path
    serving_key: Path
    admin_crt: Path
    admin_key: Path
    kcm_crt: Path
    kcm_key: Path
    sa_key: Path
    sa_pub: Path

    def client(self, stem: str) -> tuple[Path, Path]:
        """Certificate and key of one of NODE_CLIENTS."""
        return self.ca_crt.with_name(f"{stem}.crt"), self.ca_crt.with_name(f"{stem}.key")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    builder = (
        _builder(subject, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def write_pki(directory: Path) -> Pki:
    """Create a fresh CA, serving cert, client certs and service-account key in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("graylane-test-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca = (ca_cert, ca_key)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVING_DNS]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVING_IPS]
    leaves = {
        "apiserver": _leaf(ca, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, sans),
        "admin": _leaf(ca, _name("graylane-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH),
        "kcm": _leaf(
            ca, _name("system:kube-controller-manager", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH
        ),
    }
    for stem, (common, org) in NODE_CLIENTS.items():
        leaves[stem] = _leaf(ca, _name(common, org), ExtendedKeyUsageOID.CLIENT_AUTH)
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for stem, (cert, key) in leaves.items():
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(directory / f"{stem}.key", _key_pem(key))
    sa_key = _key()
    _write_private(directory / "sa.key", _key_pem(sa_key))
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    d = directory
    return Pki(
        ca_crt=d / "ca.crt",
        serving_crt=d / "apiserver.crt",
        serving_key=d / "apiserver.key",
        admin_crt=d / "admin.crt",
        admin_key=d / "admin.key",
        kcm_crt=d / "kcm.crt",
        kcm_key=d / "kcm.key",
        sa_key=d / "sa.key",
        sa_pub=d / "sa.pub",
    )


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def write_kubeconfig(path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    """A self-contained kubeconfig (certificates embedded) for one client-certificate user."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "graylane-test", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}
        ],
        "contexts": [{"name": "graylane-test", "context": {"cluster": "graylane-test", "user": user}}],
        "current-context": "graylane-test",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.touch(mode=0o600, exist_ok=True)
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.replace(path)
