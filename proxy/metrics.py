"""Prometheus metrics kept as plain dicts and rendered at scrape time (no locks, no objects per request).

One process, one event loop: a counter update is a dict lookup and an int add. ``render`` writes the
Prometheus text exposition format (version 0.0.4).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping

DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

_HELP = {
    "graylane_requests_total": ("counter", "Requests answered, by route, track and status code."),
    "graylane_decisions_total": ("counter", "Routing decisions, by route, track and reason."),
    "graylane_upstream_errors_total": ("counter", "Upstream failures, by route, track and reason."),
    "graylane_mirror_total": (
        "counter",
        "Mirrored requests (shadow traffic), by route and comparison result.",
    ),
    "graylane_config_rejected_total": ("counter", "Route documents rejected, by reason."),
    "graylane_jwt_rejected_total": ("counter", "JWTs that failed verification, by reason."),
    "graylane_tls_rejected_total": (
        "counter",
        "TLS certificates refused (the last good one keeps serving), by reason.",
    ),
    "graylane_tls_certificate_expiry_seconds": (
        "gauge",
        "Seconds until the served certificate of a Secret expires.",
    ),
    "graylane_config_generation": ("gauge", "Generation of the route document being served."),
    "graylane_config_reloads_total": (
        "counter",
        "Changes applied to the route table (each swaps the routes it changed).",
    ),
    "graylane_config_coalesced_total": (
        "counter",
        "Route documents replaced by a newer one before they were applied.",
    ),
    "graylane_ready": ("gauge", "1 when a route table is loaded and the proxy is not draining."),
    "graylane_control_plane_connected": ("gauge", "1 while the Kubernetes watch is connected (kube mode)."),
    "graylane_proxy_info": ("gauge", "Always 1; the labels name the data-plane server and the version."),
}


class Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(DURATION_BUCKETS, value)] += 1
        self.sum += value


class Metrics:
    """All proxy metrics of one worker process."""

    def __init__(self, info: dict[str, str] | None = None) -> None:
        self.info: dict[str, str] = dict(info or {})
        """Constant labels of ``graylane_proxy_info`` (``server``, ``version``)."""
        self.requests: dict[tuple[str, str, str], int] = {}
        self.decisions: dict[tuple[str, str, str], int] = {}
        self.upstream_errors: dict[tuple[str, str, str], int] = {}
        self.mirror: dict[tuple[str, str], int] = {}
        self.config_rejected: dict[str, int] = {}
        self.jwt_rejected: dict[str, int] = {}
        self.tls_rejected: dict[str, int] = {}
        self.tls_expiry: dict[str, float] = {}
        """Secret name -> the served certificate's notAfter (Unix seconds); rendered as seconds left."""
        self.generation: dict[str, int] = {}
        self.durations: dict[tuple[str, str], Histogram] = {}
        self.reloads = 0
        self.coalesced = 0
        self.ready = 0
        self.control_plane_connected: int | None = None

    def request_done(self, route: str, track: str, code: str, seconds: float) -> None:
        key = (route, track, code)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        hist = self.durations.get((route, track))
        if hist is None:
            hist = self.durations[(route, track)] = Histogram()
        hist.observe(seconds)

    def decision(self, route: str, track: str, reason: str) -> None:
        key = (route, track, reason)
        self.decisions[key] = self.decisions.get(key, 0) + 1

    def upstream_error(self, route: str, track: str, reason: str) -> None:
        key = (route, track, reason)
        self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def mirrored(self, route: str, result: str) -> None:
        key = (route, result)
        self.mirror[key] = self.mirror.get(key, 0) + 1

    def rejected(self, reason: str) -> None:
        self.config_rejected[reason] = self.config_rejected.get(reason, 0) + 1

    def jwt_failed(self, reason: str) -> None:
        self.jwt_rejected[reason] = self.jwt_rejected.get(reason, 0) + 1

    def tls_failed(self, reason: str) -> None:
        self.tls_rejected[reason] = self.tls_rejected.get(reason, 0) + 1

    def render(self, now: float | None = None) -> str:
        """The exposition text; ``now`` (Unix seconds, default the clock) dates the expiry gauge."""
        now = time.time() if now is None else now
        out: list[str] = []
        _family(out, "graylane_requests_total", ("route", "track", "code"), self.requests.items())
        _family(out, "graylane_decisions_total", ("route", "track", "reason"), self.decisions.items())
        _family(
            out, "graylane_upstream_errors_total", ("route", "track", "reason"), self.upstream_errors.items()
        )
        _family(out, "graylane_mirror_total", ("route", "result"), self.mirror.items())
        _family(out, "graylane_config_rejected_total", ("reason",), _single(self.config_rejected))
        _family(out, "graylane_jwt_rejected_total", ("reason",), _single(self.jwt_rejected))
        _family(out, "graylane_tls_rejected_total", ("reason",), _single(self.tls_rejected))
        left = {secret: round(after - now, 3) for secret, after in self.tls_expiry.items()}
        _family(out, "graylane_tls_certificate_expiry_seconds", ("secret",), _single(left))
        _family(out, "graylane_config_generation", ("route",), _single(self.generation))
        _family(out, "graylane_config_reloads_total", (), [((), self.reloads)])
        _family(out, "graylane_config_coalesced_total", (), [((), self.coalesced)])
        _family(out, "graylane_ready", (), [((), self.ready)])
        if self.info:
            names = tuple(sorted(self.info))
            _family(out, "graylane_proxy_info", names, [(tuple(self.info[n] for n in names), 1)])
        if self.control_plane_connected is not None:
            _family(out, "graylane_control_plane_connected", (), [((), self.control_plane_connected)])
        self._render_durations(out)
        return "\n".join(out) + "\n"

    def _render_durations(self, out: list[str]) -> None:
        name = "graylane_request_duration_seconds"
        out.append(f"# HELP {name} Time from request head to the end of the response, by route and track.")
        out.append(f"# TYPE {name} histogram")
        for (route, track), hist in sorted(self.durations.items()):
            labels = f'route="{_escape(route)}",track="{_escape(track)}"'
            running = 0
            for bound, count in zip(DURATION_BUCKETS, hist.counts, strict=False):
                running += count
                out.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
            running += hist.counts[-1]
            out.append(f'{name}_bucket{{{labels},le="+Inf"}} {running}')
            out.append(f"{name}_sum{{{labels}}} {hist.sum!r}")
            out.append(f"{name}_count{{{labels}}} {running}")


def _single(values: Mapping[str, float]) -> list[tuple[tuple[str, ...], float]]:
    return [((key,), value) for key, value in values.items()]


def _family(
    out: list[str],
    name: str,
    label_names: tuple[str, ...],
    samples: Iterable[tuple[tuple[str, ...], float]],
) -> None:
    kind, help_text = _HELP[name]
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in sorted(samples):
        if label_names:
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(label_names, labels, strict=True))
            out.append(f"{name}{{{body}}} {value}")
        else:
            out.append(f"{name} {value}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
