"""What ``kubectl graylane`` shows and sends, as pure functions over CanaryRoute objects (no I/O here)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = ("NAME", "STABLE", "CANARY", "WEIGHT", "STEP", "PHASE", "STABLE ERR", "STABLE P99", "CANARY ERR",
           "CANARY P99", "MIRROR", "MISMATCH")  # fmt: skip
INACTIVE_FOR_PROMOTE = ("RolledBack", "Aborted")


class CommandError(ValueError):
    """The command cannot apply to this route (printed as ``error: …``)."""


def parse_weight(text: str) -> float:
    """argparse type for ``set-weight``: 0-100, at most two decimals (the CRD's rule)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight must be a number, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"weight must be between 0 and 100, got {text}")
    if round(value, 2) != value:
        raise argparse.ArgumentTypeError(f"weight takes at most two decimals, got {text}")
    return int(value) if value == int(value) else value


def parse_header(text: str) -> tuple[str, str]:
    """argparse type for ``--header K=V`` (``K:V`` accepted too)."""
    for sep in ("=", ":"):
        name, found, value = text.partition(sep)
        if found and name.strip():
            return name.strip(), value.strip()
    raise argparse.ArgumentTypeError(f"header must be NAME=VALUE, got {text!r}")


def patch_for(command: str, route: Mapping[str, Any], *, weight: float | None = None) -> dict[str, Any]:
    """The merge patch for ``set-weight``/``promote``/``abort``/``pause``/``resume`` on this route."""
    spec = route.get("spec") or {}
    status = route.get("status") or {}
    name = (route.get("metadata") or {}).get("name", "?")
    if command == "set-weight":
        if weight is None:
            raise CommandError("set-weight needs a weight")
        return {"spec": {"weight": weight}}
    if command == "promote":
        if spec.get("rollout") and status.get("phase") in INACTIVE_FOR_PROMOTE:
            raise CommandError(f"{name} is {status['phase']}: run `kubectl graylane resume {name}` first")
        return {"spec": {"weight": 100}}
    if not spec.get("rollout"):
        raise CommandError(f"{name} has no spec.rollout; use `kubectl graylane set-weight {name} N`")
    if command == "abort":
        return {"spec": {"rollout": {"abort": True}}}
    if command == "pause":
        return {"spec": {"rollout": {"paused": True}}}
    if command == "resume":
        body: dict[str, Any] = {"spec": {"rollout": {"paused": False, "abort": False}}}
        recorded = status.get("rolloutSpecWeight")
        if isinstance(recorded, int | float) and recorded != spec.get("weight"):
            body["spec"]["weight"] = recorded  # undo a manual weight change: the rollout steers again
        return body
    raise CommandError(f"unknown command {command!r}")


def describe_patch(body: Mapping[str, Any]) -> str:
    """``{"spec": {"rollout": {"paused": true}}}`` → ``spec.rollout.paused=true``."""
    parts: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key in sorted(node):
                walk(f"{prefix}.{key}" if prefix else key, node[key])
        else:
            parts.append(f"{prefix}={_json_scalar(node)}")

    walk("", body)
    return "patched " + ", ".join(parts)


def status_table(items: Sequence[Mapping[str, Any]], *, with_namespace: bool = False) -> str:
    header = (("NAMESPACE",) if with_namespace else ()) + COLUMNS
    rows = [header] + [status_row(item, with_namespace=with_namespace) for item in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def status_row(item: Mapping[str, Any], *, with_namespace: bool = False) -> tuple[str, ...]:
    meta = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    analysis = status.get("lastAnalysis") or {}
    weight = status.get("canaryWeight", spec.get("weight"))
    row = (
        str(meta.get("name", "?")),
        str(spec.get("stable", "-")),
        str(spec.get("canary", "-")),
        _percent(weight),
        _step(spec, status),
        str(status.get("phase") or "-"),
        _percent((analysis.get("stable") or {}).get("errorRate")),
        _millis((analysis.get("stable") or {}).get("p99LatencyMs")),
        _percent((analysis.get("canary") or {}).get("errorRate")),
        _millis((analysis.get("canary") or {}).get("p99LatencyMs")),
        _percent(_mirror_share(spec, status)),
        _percent((analysis.get("mirror") or {}).get("mismatchRate")),
    )
    return ((str(meta.get("namespace", "-")),) if with_namespace else ()) + row


def explain_request(
    route: Mapping[str, Any],
    *,
    headers: Sequence[tuple[str, str]] = (),
    jwt: str | None = None,
    ip: str | None = None,
    host: str | None = None,
    path: str | None = None,
    method: str = "GET",
    query: str = "",
) -> dict[str, Any]:
    """The proxy's ``POST /explain`` body; host and path default to the route's first host and its prefix."""
    spec = route.get("spec") or {}
    hosts = [h for h in spec.get("hosts") or [] if isinstance(h, str) and not h.startswith("*.")]
    sent = dict(headers)
    if jwt:
        sent["Authorization"] = f"Bearer {jwt}"
    body: dict[str, Any] = {
        "host": host if host is not None else (hosts[0] if hosts else ""),
        "path": path if path is not None else spec.get("pathPrefix", "/"),
        "method": method.upper(),
        "query": query,
        "headers": sent,
    }
    if ip:
        body["clientIP"] = ip
    return body


def explain_summary(route: Mapping[str, Any], answer: Mapping[str, Any]) -> str:
    meta = route.get("metadata") or {}
    wanted = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    got = answer.get("route")
    if got is None:
        return f"no route matches this request (the proxy answers {answer.get('status', 404)})"
    line = f"{got} → {answer.get('track')} ({answer.get('upstream')}), reason {answer.get('reason')}"
    return line if got == wanted else f"{line}\nnote: the request matched {got}, not {wanted}"


def _mirror_share(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Any:
    """The mirror percent applied now: a rollout's shadow step, else ``spec.mirror.percent`` (None: none)."""
    if status.get("mirrorPercent") is not None:
        return status["mirrorPercent"]
    mirror = spec.get("mirror")
    return mirror.get("percent") if isinstance(mirror, Mapping) else None


def _step(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    steps = (spec.get("rollout") or {}).get("steps")
    if not isinstance(steps, list) or not steps:
        return "-"
    current = status.get("currentStep")
    return f"{current + 1}/{len(steps)}" if isinstance(current, int) else f"-/{len(steps)}"


def _percent(value: Any) -> str:
    return f"{value:g}%" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _millis(value: Any) -> str:
    return f"{value:.4g}ms" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _json_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)
