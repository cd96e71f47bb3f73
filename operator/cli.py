"""``graylane-operator [--namespace NS ... | --all-namespaces] [--config-namespace NS]``."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import kopf
import uvloop
from graylane.operator import handlers
from graylane.operator.configmaps import ConfigMapStore
from graylane.operator.gateway import controller as gateway_controller
from graylane.operator.rollout import loop as rollout_loop
from graylane.operator.rollout.book import RolloutBook
from graylane.operator.state import OperatorConfig, OperatorState

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="graylane-operator", description="Graylane's Kopf operator")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--namespace", action="append", default=[], help="watch routes in NS (repeatable)")
    scope.add_argument("--all-namespaces", action="store_true", help="watch routes in every namespace")
    p.add_argument("--config-namespace", help="where route ConfigMaps go (default: the operator's namespace)")
    p.add_argument(
        "--mirror-jwt-secrets", action="store_true", help="mirror HS* secretRef Secrets (needs get)"
    )
    p.add_argument("--mirror-tls-secrets", action="store_true",
                   help="mirror spec.tls certificates (needs get/list/watch on Secrets)")  # fmt: skip
    p.add_argument("--peering", help="Kopf peering object name (default: standalone, no peering)")
    prio = p.add_mutually_exclusive_group()
    prio.add_argument("--priority", type=int, default=None, help="this replica's peering priority")
    prio.add_argument(
        "--priority-from-pod-ip", action="store_true", help="derive a unique priority from POD_IP"
    )
    p.add_argument("--liveness", help="Kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    defaults = {f.name: f.default for f in dataclasses.fields(OperatorConfig)}  # one source of defaults
    p.add_argument("--resync-seconds", type=float, default=defaults["resync_seconds"],
                   help="retry period for routes not Ready")  # fmt: skip
    p.add_argument("--sweep-seconds", type=float, default=defaults["sweep_seconds"],
                   help="orphan sweep and full resync period")  # fmt: skip
    rollout_loop.add_arguments(p)
    p.add_argument(
        "--scan-cluster", action="store_true", help="watch Namespaces and CRDs (cluster-wide list/watch)"
    )
    p.add_argument("--gateway-api", action="store_true",
                   help="run the Gateway API controller (graylane.io/gateway-controller)")  # fmt: skip
    p.add_argument("--gateway-proxy-template", default=defaults["gateway_template"], metavar="CONFIGMAP",
                   help="ConfigMap (config namespace) with the Gateway proxies' pod template")  # fmt: skip
    p.add_argument("--verbose", "-v", action="store_true")
    return p.parse_args(argv)


def own_namespace() -> str:
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SA_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def priority_from(args: argparse.Namespace) -> int:
    if args.priority is not None:
        return int(args.priority)
    if args.priority_from_pod_ip:
        return int(ipaddress.ip_address(os.environ["POD_IP"])) % (2**31)  # unique per live pod
    return 0


def build_registry(config: OperatorConfig | None = None) -> kopf.OperatorRegistry:
    """Every handler, registered here and nowhere on import: the operator's own first (its startup sets up
    the API client and the route controller), then the rollout loop's."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry)
    rollout_loop.register(registry)
    gateway_controller.register(registry)
    return registry


def build(args: argparse.Namespace) -> tuple[OperatorConfig, OperatorState, RolloutBook]:
    config_namespace = args.config_namespace or own_namespace()
    config = OperatorConfig(
        config_namespace=config_namespace,
        namespaces=tuple(args.namespace),
        mirror_jwt_secrets=args.mirror_jwt_secrets,
        mirror_tls_secrets=args.mirror_tls_secrets,
        resync_seconds=args.resync_seconds,
        sweep_seconds=args.sweep_seconds,
        identity=os.environ.get("POD_ID") or f"{socket.gethostname()}@{os.getpid()}",
        priority=priority_from(args),
        peering_name=args.peering,
        scan_cluster=args.scan_cluster,
        gateway_api=args.gateway_api,
        gateway_template=args.gateway_proxy_template,
    )
    book = RolloutBook()  # reconcile asks it for weights and status fields; the rollout loop keeps it
    state = OperatorState(
        config=config,
        configmaps=ConfigMapStore(config_namespace),
        weight_of=book.weight_of,
        mirror_of=book.mirror_of,
        status_extra=book.status_extra,
    )
    return config, state, book


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config, state, book = build(args)
    coro = kopf.operator(
        registry=build_registry(config),
        memo=kopf.Memo(state=state, rollout_book=book, rollout_settings=rollout_loop.settings_from(args)),
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        standalone=config.peering_name is None,
        peering_name=config.peering_name,
        priority=config.priority,
        identity=cast(Any, config.identity),  # Kopf's Identity is a NewType of str
        liveness_endpoint=args.liveness,
    )
    try:  # uvloop, as Kopf's own CLI does: its TLS and event loop took a fifth of the operator's CPU off
        uvloop.run(coro)  # at 10,000 routes (docs/performance.md)
    except KeyboardInterrupt:
        return 130
    return 0
