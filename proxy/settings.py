"""Typed proxy settings, filled from the command line (``graylane.proxy.cli``) or directly in tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

ServerKind = Literal["fast", "aiohttp"]
SERVERS: tuple[ServerKind, ...] = get_args(ServerKind)
ClientIpHeader = Literal["x-forwarded-for", "forwarded"]
CLIENT_IP_HEADERS: tuple[ClientIpHeader, ...] = get_args(ClientIpHeader)


@dataclass(frozen=True, slots=True)
class Settings:
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    """Data-plane address; port 0 picks a free port (tests)."""
    listener_port: int | None = None
    """The Gateway listener port the data-plane address serves (a Gateway's proxy listens on 8080 for the
    Service's port 80): documents with ``listeners`` are served only on their ports. Default: the bound
    port."""
    more_listeners: tuple[tuple[str, int, int], ...] = ()
    """Further plain HTTP addresses, each serving its own Gateway listener port (``--also-listen
    HOST:PORT=LISTENER``): the proxies of a Gateway with more than one HTTP port."""
    admin_host: str = "0.0.0.0"
    admin_port: int = 9901
    tls_host: str | None = None
    """HTTPS listener (``--listen-tls``): None means none; ``tls_port`` 0 picks a free port (tests)."""
    tls_port: int = 8443
    tls_listener_port: int | None = None
    """The Gateway listener port the HTTPS address serves (``--tls-listener-port``; a Gateway's proxy listens
    on 8443 for the Service's 443): its documents' ``listeners`` entries and certificates. Default: the
    bound port."""
    default_tls_secret: str | None = None
    """The certificate for handshakes without SNI or for a name no route's certificate covers; without it
    they get the ``unrecognized_name`` alert."""
    https_redirect_port: int = 443
    """Where a route's ``tls.redirectHTTP`` 308 points (the HTTPS port clients use, e.g. the Service's)."""
    config_dir: Path | None = None
    """File mode: every ``*.json`` here is one route document."""
    kube: bool = False
    """Kube mode: watch ConfigMaps labelled ``graylane.io/route-config=true`` through the API."""
    namespaces: tuple[str, ...] = ()
    """Kube mode: namespaces to watch (default: the pod's own namespace, else ``graylane-system``)."""
    route_selector: str = "graylane.io/route-config=true"
    """Kube mode: the label selector of route ConfigMaps (a Gateway's proxy selects its Gateway's:
    ``graylane.io/gateway-uid=<uid>``)."""
    kubeconfig: str | None = None
    """Kube mode: a kubeconfig path (default: ``$KUBECONFIG``, then the in-cluster service account)."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs whose forwarding header (``client_ip_header``) is believed."""
    client_ip_header: ClientIpHeader = "x-forwarded-for"
    """The one header a trusted proxy's client chain is read from; the other is never believed."""
    workers: int = 1
    reuse_port: bool = False
    worker_dir: Path | None = None
    """With ``--workers N``: the supervisor's private directory of worker sockets (``admin/workers.py``)."""
    worker_index: int = 0
    poll_interval: float = 0.25
    connect_timeout: float = 5.0
    """Upstream TCP connect timeout (the request timeout is the upstream's ``timeoutSeconds``)."""
    header_timeout: float = 10.0
    """A client must finish sending a request head within this many seconds (slowloris guard)."""
    idle_timeout: float = 60.0
    """Keep-alive client connections idle longer than this are closed."""
    body_timeout: float = 30.0
    websockets: bool = True
    """Tunnel WebSocket upgrades (``tunnel.py``); off: an upgrade goes on as a plain request, then closes."""
    tunnel_idle_timeout: float = 300.0
    """A WebSocket tunnel with no bytes either way for this many seconds is closed."""
    max_body_bytes: int = 100 * 1024 * 1024
    mirror_max_in_flight: int = 100
    """Mirrored requests (shadow traffic) in flight at once per proxy (pod; split between ``--workers``);
    more are dropped and counted, never queued."""
    max_header_line: int = 8190
    max_headers: int = 100
    max_head_bytes: int = 64 * 1024
    """A whole request head (request line + headers) over this many bytes: 431 (``--max-head-bytes``)."""
    allow_underscore_headers: bool = False
    """Forward client headers whose names contain ``_`` (dropped by default, as nginx and Apache do);
    names that fold onto a proxy-owned or framing header are dropped either way."""
    drain_delay: float = 0.0
    """After SIGTERM: seconds to keep accepting while readiness already fails (endpoints catch up)."""
    drain_timeout: float = 30.0
    """After the delay: how long in-flight requests may take to finish."""
    jwks_min_interval: float = 10.0
    geoip_db: Path | None = None
    """A MaxMind-format ``.mmdb`` for ``sourceCountries`` (default: the data bundled in ``iptocc``)."""
    secrets_dir: Path | None = None
    """File mode: Secrets as ``DIR/<secret name>/<key>`` (mounted Secret volumes): HS* keys for
    ``jwt.secretRef``, ``tls.crt`` + ``tls.key`` for ``tls.secretName`` and the default certificate."""
    server: ServerKind = "fast"
    """Data-plane HTTP server: ``fast`` (asyncio protocol + httptools) or ``aiohttp`` (``web.Server``)."""
    country_header: str | None = None
    """A CDN's country header (``CF-IPCountry``), believed only from a trusted proxy."""
    gc_tuning: bool = True
    """Raise the collector's thresholds and freeze the startup heap (``GRAYLANE_GC_TUNING=0``: neither)."""

    def __post_init__(self) -> None:
        if self.default_tls_secret is not None and self.tls_host is None:
            raise ValueError("a default TLS secret needs an HTTPS listener (--listen-tls)")
        if self.tls_listener_port is not None and self.tls_host is None:
            raise ValueError("a TLS listener port needs an HTTPS listener (--listen-tls)")
        if self.server not in SERVERS:
            raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {self.server!r}")
        if self.mirror_max_in_flight < 0:
            raise ValueError("mirror_max_in_flight must be 0 or more")
        if self.client_ip_header not in CLIENT_IP_HEADERS:
            raise ValueError(f"client_ip_header must be one of {', '.join(CLIENT_IP_HEADERS)}")
