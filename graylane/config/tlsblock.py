"""Validation of a route document's ``tls`` block (part of :mod:`graylane.config.loader`).

``{"secretName": ..., "hosts": [...], "redirectHTTP": false}``: the ``kubernetes.io/tls`` Secret (in the
proxies' namespace: the operator's mirror) whose certificate the HTTPS listener offers for ``hosts`` (the
route's DNS hosts: SNI carries names, never addresses), and whether plain HTTP requests get a 308 to HTTPS.
The certificate itself never appears in the document.

Schema 2: a listener entry's ``tls``, ``[{"secretName": ..., "hostname": "a.example.com"}]`` -- the
certificates of the HTTPS Gateway listeners the route is attached to on that port, each for the SNI names
its listener's hostname matches (no ``hostname``: any name).
"""

from __future__ import annotations

from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.config.model import ListenerCert, TlsSettings
from graylane.config.routeblock import valid_host
from graylane.config.upstreamblock import K8S_NAME


def is_sni_name(host: str) -> bool:
    """A route host a TLS client can name in SNI: a DNS name (``*.`` included), not an IP literal (a host
    whose labels are all digits reads as IPv4)."""
    return not host.startswith("[") and not host.replace(".", "").isdigit()


def parse_tls(c: FieldChecker, value: Any, route_hosts: tuple[str, ...]) -> TlsSettings | None:
    obj = c.obj(value, "tls", required=("secretName", "hosts"), optional=("redirectHTTP",))
    if obj is None:
        return None
    before = len(c.errors)
    name = c.string(obj.get("secretName"), "tls.secretName", max_len=253, pattern=K8S_NAME,
                    what="a Secret name (DNS subdomain)")  # fmt: skip
    hosts = c.strings(obj.get("hosts"), "tls.hosts", min_len=1, max_len=100)
    for i, host in enumerate(hosts):
        path = join("tls.hosts", i)
        if host not in route_hosts:
            c.error(path, f"{host!r} is not one of the route's hosts")
        elif not is_sni_name(host):
            c.error(path, "SNI carries DNS names only, not IP addresses")
    redirect = obj.get("redirectHTTP", False)
    if not isinstance(redirect, bool):
        c.error("tls.redirectHTTP", "must be true or false")
    if len(c.errors) != before or name is None:
        return None
    return TlsSettings(secret_name=name, hosts=hosts, redirect_http=bool(redirect))


def parse_listener_tls(c: FieldChecker, value: Any, path: str) -> tuple[ListenerCert, ...]:
    out: list[ListenerCert] = []
    for i, item in enumerate(c.array(value, path, min_len=1, max_len=64)):
        where = join(path, i)
        obj = c.obj(item, where, required=("secretName",), optional=("hostname",))
        if obj is None:
            continue
        name = c.string(obj.get("secretName"), join(where, "secretName"), max_len=253, pattern=K8S_NAME,
                        what="a Secret name (DNS subdomain)")  # fmt: skip
        hostname = obj.get("hostname")
        if hostname is not None and not (
            isinstance(hostname, str) and valid_host(hostname) and is_sni_name(hostname)
        ):
            c.error(join(where, "hostname"), "must be a lower-case DNS name (optionally *.)")
        elif name is not None:
            out.append(ListenerCert(secret_name=name, hostname=hostname))
    return tuple(out)
