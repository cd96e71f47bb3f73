"""Kubernetes Events on CanaryRoutes and TrafficPolicies: the one place that builds and posts them."""

from __future__ import annotations

from collections.abc import Mapping
from logging import Logger
from typing import Any

from graylane.operator.kubeapi import APIError
from graylane.operator.state import OperatorState

from graylane.rollout.status import iso

COMPONENT = "graylane-operator"


def event_body(
    state: OperatorState, route: Mapping[str, Any], kind: str, reason: str, message: str
) -> dict[str, Any]:
    meta = route["metadata"]
    stamp = iso(state.now())
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": route.get("apiVersion", "graylane.io/v1alpha1"),
            "kind": route.get("kind", "CanaryRoute"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": state.config.identity[:128] or COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(
    state: OperatorState, route: Mapping[str, Any], kind: str, reason: str, message: str, *, logger: Logger
) -> None:
    """Post an Event on the route; a failure is logged and never fails the caller's reconcile or round."""
    namespace = route["metadata"]["namespace"]
    body = event_body(state, route, kind, reason, message)
    try:
        await state.require_api().create(f"/api/v1/namespaces/{namespace}/events", body=body)
    except APIError as exc:
        logger.warning(f"Cannot post the {reason} event: {exc!r}")
