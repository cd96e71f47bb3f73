"""Waiting for pods on the real node, and explaining why they fail (for the node and e2e tests).

``wait_pods(kubectl, namespace, selector)`` returns once every selected pod is Ready (or, with
``phase="Succeeded"``, has completed), and raises :class:`PodFailure` -- never hangs -- as soon as a pod
cannot get there: a crash loop, an image that is not on the node (``ErrImageNeverPull``), a failed
pod, or the timeout. The failure message is :func:`diagnose`'s report: each pod's phase, container
states, the last lines of each container's log (current and previous run) and the pod's events.
"""

from __future__ import annotations

import time
from typing import Any

from cluster.kubectl import Kubectl

# Waiting reasons that will not fix themselves.
FATAL_WAITING = {
    "CrashLoopBackOff",
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


class PodFailure(AssertionError):
    """A pod will not become ready; the message holds its logs and events."""


def events(kubectl: Kubectl, namespace: str, pod: str | None = None) -> list[dict[str, Any]]:
    args = ["get", "events", "-n", namespace]
    if pod:
        args.append(f"--field-selector=involvedObject.name={pod}")
    items: list[dict[str, Any]] = kubectl.json(*args)["items"]
    return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def format_events(items: list[dict[str, Any]]) -> str:
    lines = [
        f"  {e.get('type', '')} {e.get('reason', '')} x{e.get('count') or 1}: {e.get('message', '').strip()}"
        for e in items
    ]
    return "\n".join(lines) or "  (no events)"


def _log_tail(kubectl: Kubectl, namespace: str, pod: str, container: str, lines: int) -> str:
    parts = []
    for previous in (True, False):
        args = ["logs", "-n", namespace, pod, "-c", container, f"--tail={lines}"]
        result = kubectl(*args, *(["--previous"] if previous else []), check=False)
        if result.returncode == 0 and result.stdout.strip():
            label = "previous run" if previous else "current run"
            parts.append(f"    [{label}]\n" + "\n".join(f"    {x}" for x in result.stdout.splitlines()))
    return "\n".join(parts) or "    (no log)"


def diagnose(kubectl: Kubectl, namespace: str, pod: dict[str, Any], lines: int = 20) -> str:
    """Phase, container states, log tails and events of one pod, as text."""
    name = pod["metadata"]["name"]
    status = pod.get("status", {})
    out = [f"pod {namespace}/{name}: phase {status.get('phase')}"]
    for cs in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
        state = cs.get("state", {})
        out.append(f"  container {cs['name']}: restarts {cs.get('restartCount', 0)}, state {state}")
        out.append(_log_tail(kubectl, namespace, name, cs["name"], lines))
    out.append(f"  events of {name}:")
    out.append(format_events(events(kubectl, namespace, name)))
    return "\n".join(out)


def _blocked(pod: dict[str, Any], phase: str) -> str | None:
    """Why the pod cannot get to ``phase`` (None while it still may). Waiting for Running, a container
    that exited counts as a crash at once (a restart would hide it: no waiting for the back-off)."""
    status = pod.get("status", {})
    if status.get("phase") == "Failed" and phase != "Failed":
        return "phase Failed"
    for cs in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
        state = cs.get("state", {})
        reason = state.get("waiting", {}).get("reason")
        if reason in FATAL_WAITING:
            return str(reason)
        last = state.get("terminated") or cs.get("lastState", {}).get("terminated")
        if phase == "Running" and last:
            return f"container {cs['name']} exited with code {last.get('exitCode')} ({last.get('reason')})"
    return None


def _done(pod: dict[str, Any], phase: str) -> bool:
    status = pod.get("status", {})
    if phase != "Running":
        return bool(status.get("phase") == phase)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def wait_pods(
    kubectl: Kubectl,
    namespace: str,
    selector: str,
    *,
    count: int = 1,
    phase: str = "Running",
    timeout: float = 120,
) -> list[dict[str, Any]]:
    """Wait until ``count`` pods match ``selector`` and all are Ready (or in ``phase``); PodFailure if not."""
    deadline = time.monotonic() + timeout
    while True:
        pods: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        blocked = [(p, why) for p in pods if (why := _blocked(p, phase))]
        if blocked:
            report = "\n".join(diagnose(kubectl, namespace, p) for p, _ in blocked)
            raise PodFailure(f"pods {selector!r} in {namespace} cannot start ({blocked[0][1]}):\n{report}")
        if len(pods) >= count and all(_done(p, phase) for p in pods):
            return pods
        if time.monotonic() > deadline:
            report = "\n".join(diagnose(kubectl, namespace, p) for p in pods) or "no pods"
            raise PodFailure(f"pods {selector!r} in {namespace} not {phase} after {timeout:.0f}s:\n{report}")
        time.sleep(0.5)
