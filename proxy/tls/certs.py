"""The certificates the HTTPS listener serves: the last good version of each Secret, and the SNI table.

* **Which Secrets**: every route document's ``tls.secretName`` plus ``--default-tls-secret``. Their
  ``tls.crt`` / ``tls.key`` come from a :class:`~graylane.proxy.sources.secrets.SecretStore` (file mode:
  ``--secrets-dir DIR/<secret>/``; kube mode: the watch of ``kubernetes.io/tls`` Secrets fills it).
* **A new version** of a Secret is parsed and checked once by the core (``graylane.tls``; clock: ``clock``).
  It replaces the served one only when it passes and covers every route host the served one covered. A
  refused version (``graylane_tls_rejected_total{reason}``, listed at ``/routes`` with field paths) leaves
  the last good one serving; so does a Secret that went away (``not-found``). Each distinct refused
  content is counted once, however often it is offered again.
* **Gateway listeners** (schema-2 documents): each ``listeners[].tls`` entry of the HTTPS listener's port
  (``listener_port``) offers its Secret for its listener's ``hostname``, without the coverage check (a
  Gateway listener's certificate is the user's word; the client verifies it); one without a hostname is the
  default certificate when there is no ``--default-tls-secret``.
* **The SNI table** maps each route host the served certificate covers (RFC 6125) to that Secret's context;
  it is rebuilt whole and swapped with one assignment, so a handshake sees the old or the new table, and a
  connection keeps the context it started with. Lookup: the exact name, then its one-label wildcard, then
  the default certificate. Routes sharing a host should share the Secret: otherwise the route that sorts
  first (``namespace/name``) wins and ``/routes`` lists the conflict.

Nothing here ever logs or shows key material: messages carry Secret names, field paths, subjects, dates and
SHA-256 fingerprints of certificates.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graylane.proxy.metrics import Metrics
from graylane.proxy.sources.secrets import SecretStore
from graylane.proxy.tls.context import server_context

from graylane.config.document import FieldError, RouteConfig, SecretRef
from graylane.config.model import ListenerCert
from graylane.tls import hostnames
from graylane.tls.certificate import (
    HOST_MISMATCH,
    NOT_FOUND,
    Certificate,
    CertificateError,
    parse_certificate,
)

log = logging.getLogger("graylane.proxy")


@dataclass(frozen=True, slots=True)
class Served:
    secret: str
    certificate: Certificate
    context: ssl.SSLContext
    digest: bytes


@dataclass(frozen=True, slots=True)
class TlsRejection:
    secret: str
    reason: str
    errors: tuple[FieldError, ...]
    at: float
    digest: bytes | None


class CertStore:
    def __init__(self, *, secrets: SecretStore, metrics: Metrics, default_secret: str | None = None,
                 clock: Callable[[], float] = time.time,
                 listener_port: int | None = None) -> None:  # fmt: skip
        self.secrets = secrets
        self.metrics = metrics
        self.default_secret = default_secret
        self.clock = clock
        self.listener_port = listener_port  # the Gateway port the HTTPS listener serves (None: any)
        self.served: dict[str, Served] = {}
        self.rejected: dict[str, TlsRejection] = {}
        self.by_name: Mapping[str, ssl.SSLContext] = {}
        self.owners: Mapping[str, str] = {}  # host -> the Secret served for it
        self.problems: tuple[str, ...] = ()  # hosts left without a certificate, and why
        self.default: ssl.SSLContext | None = None
        self._routes: tuple[RouteConfig, ...] = ()
        self._listeners: tuple[tuple[str, ListenerCert], ...] = ()  # (route key, Gateway listener's cert)

    def refresh(self, configs: Sequence[RouteConfig]) -> None:
        """The routes changed: load what they name, rebuild the table."""
        self._routes = tuple(sorted((c for c in configs if c.tls is not None), key=lambda c: c.key))
        self._listeners = gateway_certificates(configs, port=self.listener_port)
        self.reload()

    def reload(self) -> None:
        """The Secrets (may have) changed: offer every wanted one again, rebuild the table."""
        hosts_of: dict[str, list[str]] = {}
        for config in self._routes:
            assert config.tls is not None
            hosts_of.setdefault(config.tls.secret_name, []).extend(config.tls.hosts)
        if self.default_secret:
            hosts_of.setdefault(self.default_secret, [])
        for _, cert in self._listeners:
            hosts_of.setdefault(cert.secret_name, [])
        for name, hosts in sorted(hosts_of.items()):
            self._offer(name, hosts)
        for gone in set(self.served) - hosts_of.keys():
            del self.served[gone]
            self.metrics.tls_expiry.pop(gone, None)
        for gone in set(self.rejected) - hosts_of.keys():
            del self.rejected[gone]
        self._index()

    def lookup(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context for a handshake that asked for ``server_name`` (the SNI callback's question)."""
        if server_name:
            table = self.by_name
            for key in hostnames.lookup_keys(server_name):
                found = table.get(key)
                if found is not None:
                    return found
        return self.default

    def serves(self, host: str) -> bool:
        """True when a handshake for ``host`` gets a certificate of its own (redirects to HTTPS ask this)."""
        table = self.by_name
        return any(key in table for key in hostnames.lookup_keys(host))

    def _offer(self, name: str, hosts: Sequence[str]) -> None:
        crt = self.secrets.get(SecretRef(name, "tls.crt"))
        key = self.secrets.get(SecretRef(name, "tls.key"))
        if crt is None or key is None:
            message = f"Secret {name!r} not found, or without tls.crt and tls.key"
            self._reject(name, NOT_FOUND, (FieldError("", message),), None)
            return
        digest = hashlib.sha256(b"%d:%b%b" % (len(crt), crt, key)).digest()
        current = self.served.get(name)
        if current is not None and current.digest == digest:
            self.rejected.pop(name, None)  # e.g. back after a not-found
            return
        seen = self.rejected.get(name)
        if seen is not None and seen.digest == digest:
            return  # refused before: counted once
        try:
            cert = parse_certificate(
                crt, key, now=datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
            )
            lost = [h for h in hosts if current and hostnames.covers(current.certificate.dns_names, h)
                    and not hostnames.covers(cert.dns_names, h)]  # fmt: skip
            if lost:
                errors = tuple(
                    FieldError(h, "covered by the served certificate, not by this one") for h in lost
                )
                self._reject(name, HOST_MISMATCH, errors, digest)
                return
            context = server_context(cert)
        except CertificateError as exc:
            self._reject(name, exc.reason, tuple(exc.errors), digest)
            return
        except (ssl.SSLError, ValueError) as exc:  # OpenSSL disagrees with the core: still refused
            self._reject(name, "malformed", (FieldError("tls.crt", f"OpenSSL refused it: {exc}"),), digest)
            return
        self.served[name] = Served(name, cert, context, digest)
        self.rejected.pop(name, None)
        self.metrics.tls_expiry[name] = cert.not_after.timestamp()
        log.info("TLS Secret %s: serving %s, %s, sha256 %s, until %s", name, cert.subject, cert.key_type,
                 cert.fingerprint[:16], cert.not_after.isoformat())  # fmt: skip

    def _reject(self, name: str, reason: str, errors: tuple[FieldError, ...], digest: bytes | None) -> None:
        seen = self.rejected.get(name)
        if seen is not None and seen.reason == reason and seen.digest == digest:
            return
        self.rejected[name] = TlsRejection(name, reason, errors, self.clock(), digest)
        self.metrics.tls_failed(reason)
        keeps = "the last good certificate keeps serving" if name in self.served else "nothing to serve yet"
        log.warning(
            "TLS Secret %s refused (%s): %s; %s", name, reason, "; ".join(map(str, errors[:3])), keeps
        )

    def _index(self) -> None:
        table: dict[str, ssl.SSLContext] = {}
        owners: dict[str, str] = {}
        problems: list[str] = []
        for config in self._routes:
            assert config.tls is not None
            secret = config.tls.secret_name
            served = self.served.get(secret)
            for host in config.tls.hosts:
                if served is None:
                    problems.append(f"{host} ({config.key}): no certificate from Secret {secret} yet")
                elif not hostnames.covers(served.certificate.dns_names, host):
                    problems.append(f"{host} ({config.key}): the certificate of {secret} does not cover it")
                elif owners.get(host, secret) != secret:
                    problems.append(
                        f"{host} ({config.key}): Secret {owners[host]} is served for it, not {secret}"
                    )
                else:
                    table[host], owners[host] = served.context, secret
        default = self.served.get(self.default_secret) if self.default_secret else None
        default = self._index_listeners(table, owners, problems) if default is None else default
        self.by_name, self.owners, self.problems = table, owners, tuple(problems)
        self.default = default.context if default is not None else None

    def _index_listeners(
        self, table: dict[str, ssl.SSLContext], owners: dict[str, str], problems: list[str]
    ) -> Served | None:
        """Gateway listeners: a certificate for the SNI names its listener's hostname matches, whether or not
        it names them (the client judges); a listener without hostname gives the port's default."""
        default = None
        for key, cert in self._listeners:
            served = self.served.get(cert.secret_name)
            name = cert.hostname or "(any name)"
            if served is None:
                problems.append(f"{name} ({key}): no certificate from Secret {cert.secret_name} yet")
            elif cert.hostname is None:
                default = default or served
            elif owners.setdefault(cert.hostname, cert.secret_name) == cert.secret_name:
                table.setdefault(cert.hostname, served.context)
            else:
                other = owners[cert.hostname]
                problems.append(f"{name} ({key}): Secret {other} is served for it, not {cert.secret_name}")
        return default

    def describe(self) -> dict[str, Any]:
        """What ``/routes`` shows: certificates (public facts only), refusals, host owners, problems."""
        served = [
            {"secret": s.secret, "subject": s.certificate.subject, "dnsNames": list(s.certificate.dns_names),
             "keyType": s.certificate.key_type, "notAfter": s.certificate.not_after.isoformat(),
             "sha256": s.certificate.fingerprint, "default": s.secret == self.default_secret}
            for s in sorted(self.served.values(), key=lambda s: s.secret)
        ]  # fmt: skip
        rejected = [
            {"secret": r.secret, "reason": r.reason, "at": r.at, "servingPrevious": r.secret in self.served,
             "errors": [{"path": e.path, "message": e.message} for e in r.errors]}
            for r in sorted(self.rejected.values(), key=lambda r: r.secret)
        ]  # fmt: skip
        hosts = dict(sorted(self.owners.items()))
        return {"certificates": served, "rejected": rejected, "hosts": hosts, "problems": list(self.problems),
                "rejectedTotal": dict(self.metrics.tls_rejected)}  # fmt: skip


def gateway_certificates(
    configs: Sequence[RouteConfig], *, port: int | None
) -> tuple[tuple[str, ListenerCert], ...]:
    """The Gateway listener certificates the documents name for ``port`` (None: any), in route order."""
    found = [(c.key, cert) for c in configs for entry in c.listeners if port is None or entry.port == port
             for cert in entry.tls]  # fmt: skip
    return tuple(sorted(found, key=lambda pair: pair[0]))
