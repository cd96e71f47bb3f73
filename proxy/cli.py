"""``graylane-proxy``: file mode (``--config-dir``) or kube mode (``--kube``); ``--workers N`` processes.

With several workers every process binds the same listen and admin addresses with ``SO_REUSEPORT`` and the
kernel spreads connections; each worker loads the routes itself. The worker that answers ``/metrics`` or
``/readyz`` asks its siblings over private Unix sockets and answers for the whole pod (``workers.py``).
SIGTERM or SIGINT to the parent is passed to every worker; each drains (readiness fails at once, in-flight
requests finish) and the parent exits when all have.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from graylane.proxy.settings import CLIENT_IP_HEADERS, SERVERS, Settings

log = logging.getLogger("graylane.proxy")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _also_listen(text: str) -> tuple[str, int, int]:
    """``HOST:PORT=LISTENER`` -> (host, port, Gateway listener port)."""
    address, sep, listener = text.rpartition("=")
    if not sep or not listener.isdigit() or not 1 <= int(listener) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT=LISTENER_PORT, got {text!r}")
    return (*_host_port(address), int(listener))


def _cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a CIDR: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    # Every default is read off one Settings *instance*: the values a bare command runs with are the values
    # Settings documents (a slots dataclass's class attribute is a member descriptor, not the default).
    d = Settings()
    p = argparse.ArgumentParser(prog="graylane-proxy", description="Graylane canary proxy (data plane).")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--config-dir", type=Path, help="file mode: one route document per *.json file")
    mode.add_argument("--kube", action="store_true", help="watch route ConfigMaps through the Kubernetes API")
    p.add_argument("--namespace", action="append", default=[], help="kube mode: namespace to watch (repeat)")
    p.add_argument("--kubeconfig", help="kube mode: kubeconfig path (default $KUBECONFIG, then in-cluster)")
    p.add_argument("--route-selector", default=d.route_selector, metavar="SELECTOR",
                   help="kube mode: label selector of the route ConfigMaps to serve")  # fmt: skip
    p.add_argument("--listen", type=_host_port, default=(d.listen_host, d.listen_port), metavar="HOST:PORT")
    p.add_argument("--listener-port", type=int, default=d.listener_port, metavar="PORT",
                   help="the Gateway listener port --listen serves (default: its own port)")  # fmt: skip
    p.add_argument("--also-listen", type=_also_listen, action="append", default=[],
                   metavar="HOST:PORT=LISTENER",
                   help="another HTTP address, for Gateway listener port LISTENER (repeatable)")  # fmt: skip
    p.add_argument(
        "--admin-listen", type=_host_port, default=(d.admin_host, d.admin_port), metavar="HOST:PORT"
    )
    _add_tls(p, d)
    _add_client_limits(p, d)
    _add_timeouts(p, d)
    p.add_argument("--geoip-db", type=Path, help="MaxMind-format .mmdb for sourceCountries (default: iptocc)")
    p.add_argument("--country-header", help="CDN country header (e.g. CF-IPCountry), trusted proxies only")
    p.add_argument("--server", choices=SERVERS, default=d.server,
                   help="data-plane HTTP server (the admin port is always aiohttp)")  # fmt: skip
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--worker-dir", type=Path, help=argparse.SUPPRESS)  # set by the supervisor for its workers
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _add_tls(p: argparse.ArgumentParser, d: Settings) -> None:
    """The HTTPS listener and where Secrets come from."""
    p.add_argument("--listen-tls", type=_host_port, metavar="HOST:PORT",
                   help="also serve HTTPS here (certificates by SNI, from tls.secretName)")  # fmt: skip
    p.add_argument("--tls-listener-port", type=int, default=d.tls_listener_port, metavar="PORT",
                   help="the Gateway listener port --listen-tls serves (default: its own port)")  # fmt: skip
    p.add_argument("--default-tls-secret", metavar="NAME",
                   help="certificate for no or an unknown SNI name (default: an alert)")  # fmt: skip
    p.add_argument("--https-redirect-port", type=int, default=d.https_redirect_port,
                   help="the HTTPS port a route's redirectHTTP 308 names (443: none in the URL)")  # fmt: skip
    p.add_argument("--secrets-dir", "--jwt-secret-dir", type=Path, dest="secrets_dir",
                   help="file mode: Secrets as DIR/<secret>/<key> (HS* keys, tls.crt + tls.key)")  # fmt: skip


def _add_client_limits(p: argparse.ArgumentParser, d: Settings) -> None:
    """Who the client is and what it may send."""
    p.add_argument("--trusted-proxy", type=_cidr, action="append", default=[], metavar="CIDR")
    p.add_argument("--client-ip-header", choices=CLIENT_IP_HEADERS, default=d.client_ip_header,
                   help="the one header a trusted proxy's client chain is read from")  # fmt: skip
    p.add_argument("--max-head-bytes", type=int, default=d.max_head_bytes,
                   help="request line + headers over this many bytes: 431")  # fmt: skip
    p.add_argument("--allow-underscore-headers", action="store_true", default=d.allow_underscore_headers,
                   help="forward client headers whose names contain '_' (dropped by default)")  # fmt: skip
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    p.add_argument("--mirror-max-in-flight", type=int, default=d.mirror_max_in_flight, metavar="N",
                   help="mirrored requests in flight at once; more are dropped and counted")  # fmt: skip
    p.add_argument("--no-websockets", dest="websockets", action="store_false",
                   help="do not tunnel WebSocket upgrades (they go on as plain requests)")  # fmt: skip


def _add_timeouts(p: argparse.ArgumentParser, d: Settings) -> None:
    """Processes, drain and every timeout."""
    p.add_argument(
        "--workers", type=int, default=d.workers, help="processes sharing the ports (SO_REUSEPORT)"
    )
    p.add_argument(
        "--drain-delay", type=float, default=d.drain_delay, help="seconds to keep accepting after SIGTERM"
    )
    p.add_argument(
        "--drain-timeout", type=float, default=d.drain_timeout, help="seconds in-flight requests may take"
    )
    p.add_argument(
        "--header-timeout", type=float, default=d.header_timeout, help="seconds to receive a request head"
    )
    p.add_argument(
        "--idle-timeout", type=float, default=d.idle_timeout, help="keep-alive idle timeout, seconds"
    )
    p.add_argument("--tunnel-idle-timeout", type=float, default=d.tunnel_idle_timeout,
                   help="seconds a WebSocket tunnel may pass without a byte either way")  # fmt: skip
    p.add_argument(
        "--connect-timeout", type=float, default=d.connect_timeout, help="upstream connect timeout, seconds"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        listen_host=args.listen[0],
        listen_port=args.listen[1],
        admin_host=args.admin_listen[0],
        admin_port=args.admin_listen[1],
        tls_host=args.listen_tls[0] if args.listen_tls else None,
        tls_port=args.listen_tls[1] if args.listen_tls else Settings().tls_port,
        default_tls_secret=args.default_tls_secret,
        tls_listener_port=args.tls_listener_port,
        https_redirect_port=args.https_redirect_port,
        config_dir=args.config_dir,
        kube=args.kube,
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        route_selector=args.route_selector,
        listener_port=args.listener_port,
        more_listeners=tuple(args.also_listen),
        trusted_proxies=tuple(args.trusted_proxy),
        client_ip_header=args.client_ip_header,
        max_head_bytes=args.max_head_bytes,
        allow_underscore_headers=args.allow_underscore_headers,
        workers=args.workers,
        reuse_port=args.worker_dir is not None,
        worker_dir=args.worker_dir,
        worker_index=args.worker_index,
        drain_delay=args.drain_delay,
        drain_timeout=args.drain_timeout,
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        tunnel_idle_timeout=args.tunnel_idle_timeout,
        websockets=args.websockets,
        connect_timeout=args.connect_timeout,
        max_body_bytes=args.max_body_bytes,
        mirror_max_in_flight=args.mirror_max_in_flight,
        geoip_db=args.geoip_db,
        country_header=args.country_header,
        secrets_dir=args.secrets_dir,
        server=args.server,
        gc_tuning=os.environ.get("GRAYLANE_GC_TUNING", "1") == "1",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.config_dir is not None and not args.config_dir.is_dir():
        print(f"graylane-proxy: --config-dir {args.config_dir}: not a directory", file=sys.stderr)
        return 2
    for flag, value in (("--default-tls-secret", args.default_tls_secret),
                        ("--tls-listener-port", args.tls_listener_port)):  # fmt: skip
        if value is not None and args.listen_tls is None:
            print(f"graylane-proxy: {flag} needs --listen-tls", file=sys.stderr)
            return 2
    if args.workers > 1 and args.worker_dir is None:
        return _supervise(argv, args.workers)
    return run_worker(settings_from_args(args))


def run_worker(settings: Settings) -> int:
    import uvloop

    async def _main() -> None:
        from graylane.proxy.app import serve

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop=stop)

    if settings.gc_tuning:
        # Per request the proxy allocates a few short-lived objects and almost no cycles; the default
        # generation-0 threshold (700) runs a collection every few requests. Raise it, and move the
        # startup objects (modules, route table) out of the collector's way.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    uvloop.run(_main())
    return 0


def _supervise(argv: list[str], workers: int) -> int:
    """Start ``workers`` copies of this command sharing the ports; forward signals; wait for all.

    Each worker gets the supervisor's private directory for the Unix sockets its siblings ask it on. A
    worker that exits on its own (a crash) stops the others and the supervisor exits 1, so the pod is
    restarted instead of running on with fewer workers than configured.
    """
    directory = tempfile.mkdtemp(prefix="graylane-workers-")  # mode 0700
    try:
        return _run_workers(argv, workers, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_workers(argv: list[str], workers: int, directory: str) -> int:
    cmd = [sys.executable, "-m", "graylane.proxy.cli", *argv, "--worker-dir", directory]
    children = [subprocess.Popen([*cmd, "--worker-index", str(i)]) for i in range(workers)]
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    crashed = False
    alive = {child.pid: child for child in children}
    while alive:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        child = alive.pop(pid, None)
        if child is None:
            continue
        child.returncode = os.waitstatus_to_exitcode(status)
        if not stopping:
            crashed = True
            forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children]
    # a worker stopped by the signal we forwarded (before it installed its handler) stopped cleanly
    failed = [c for c in codes if c not in (0, -signal.SIGTERM, -signal.SIGINT)]
    return 1 if failed or crashed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
