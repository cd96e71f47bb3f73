"""``kubectl graylane``: see and steer CanaryRoutes (installed as ``kubectl-graylane``; runs kubectl).

```
kubectl graylane status [ROUTE] [-n NS | -A]        weights, step, phase, both tracks' error rate and p99
kubectl graylane set-weight ROUTE N [-n NS]         spec.weight = N (during a rollout: pauses it at N)
kubectl graylane promote ROUTE                      spec.weight = 100 (during a rollout: Promoted now)
kubectl graylane abort ROUTE                        spec.rollout.abort = true (canary 0 within an interval)
kubectl graylane pause ROUTE                        spec.rollout.paused = true
kubectl graylane resume ROUTE                       paused/abort = false, spec.weight back to the rollout's;
                                                    after a rollback: abort, wait for Aborted, then clear it
kubectl graylane explain ROUTE [--header K=V] [--jwt TOKEN] [--ip IP] [--proxy-admin URL]
                                                    asks a proxy's /explain what the described request gets
```
kubectl is ``$KUBECTL`` or the first ``kubectl`` on ``PATH``; ``--kubeconfig`` and ``--context`` pass through.
Every change is one ``kubectl patch --type merge`` on the CanaryRoute's spec.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from graylane.cli import kubectl_views

RESOURCE = "canaryroutes.graylane.io"
DEFAULT_PROXY_ADMIN = "http://127.0.0.1:9901"


class PluginError(Exception):
    """A user-facing failure: printed as ``error: …``, exit code 1."""


class Kubectl:
    """Runs kubectl with the namespace, kubeconfig and context the user gave."""

    def __init__(self, binary: str, *, namespace: str | None, kubeconfig: str | None, context: str | None):
        self.binary = binary
        self.namespace = namespace
        self.globals = [
            *(["--kubeconfig", kubeconfig] if kubeconfig else []),
            *(["--context", context] if context else []),
        ]

    def argv(self, *args: str, all_namespaces: bool = False) -> list[str]:
        scope = ["--all-namespaces"] if all_namespaces else (["-n", self.namespace] if self.namespace else [])
        return [self.binary, *self.globals, *args, *scope]  # scope flags after the verb: -A is not global

    def run(self, *args: str, all_namespaces: bool = False) -> str:
        argv = self.argv(*args, all_namespaces=all_namespaces)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise PluginError(result.stderr.strip() or f"kubectl exited {result.returncode}")
        return result.stdout

    def get_route(self, name: str) -> dict[str, Any]:
        obj = json.loads(self.run("get", RESOURCE, name, "-o", "json"))
        if not isinstance(obj, dict):
            raise PluginError(f"unexpected kubectl output for {name}")
        return obj

    def patch(self, name: str, body: Mapping[str, Any]) -> str:
        return self.run("patch", RESOURCE, name, "--type", "merge", "-p", json.dumps(body, sort_keys=True))


def find_kubectl(environ: Mapping[str, str]) -> str:
    binary = environ.get("KUBECTL") or shutil.which("kubectl", path=environ.get("PATH"))
    if not binary:
        raise PluginError("kubectl not found: put it on PATH or set $KUBECTL")
    return binary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl graylane", description="See and steer Graylane CanaryRoutes."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace")
    common.add_argument("--kubeconfig")
    common.add_argument("--context")
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", parents=[common], help="weights, step, phase and figures")
    status.add_argument("route", nargs="?")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    weight = sub.add_parser("set-weight", parents=[common], help="set spec.weight (pauses an active rollout)")
    weight.add_argument("route")
    weight.add_argument("weight", type=kubectl_views.parse_weight)
    for name, text in (
        ("promote", "send all traffic to the canary (spec.weight 100)"),
        ("abort", "drop the canary to 0 (spec.rollout.abort)"),
        ("pause", "hold the rollout (spec.rollout.paused)"),
        ("resume", "continue the rollout (after a rollback: retry it)"),
    ):
        cmd = sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("route")
        if name == "resume":
            cmd.add_argument(
                "--timeout", type=float, default=120.0, help="seconds to wait for Aborted (retry)"
            )
    explain = sub.add_parser("explain", parents=[common], help="ask a proxy which track a request gets")
    explain.add_argument("route")
    explain.add_argument(
        "--header", action="append", default=[], metavar="K=V", type=kubectl_views.parse_header
    )
    explain.add_argument("--jwt", metavar="TOKEN")
    explain.add_argument("--ip", metavar="IP")
    explain.add_argument("--host")
    explain.add_argument("--path")
    explain.add_argument("--method", default="GET")
    explain.add_argument("--query", default="")
    explain.add_argument("--proxy-admin", metavar="URL")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        kubectl = Kubectl(
            find_kubectl(environ), namespace=args.namespace, kubeconfig=args.kubeconfig, context=args.context
        )
        COMMANDS[args.command](kubectl, args, out=out, environ=environ, sleep=sleep)
    except (PluginError, kubectl_views.CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_status(kubectl: Kubectl, args: argparse.Namespace, **kw: Any) -> None:
    if args.route:
        items = [kubectl.get_route(args.route)]
    else:
        listing = json.loads(kubectl.run("get", RESOURCE, "-o", "json", all_namespaces=args.all_namespaces))
        items = listing.get("items") or []
    out: TextIO = kw["out"]
    if not items:
        print("No CanaryRoutes found.", file=out)
        return
    print(kubectl_views.status_table(items, with_namespace=args.all_namespaces), file=out)
    if args.route:
        message = (items[0].get("status") or {}).get("message")
        if message:
            print(f"\n{message}", file=out)


def cmd_patch(kubectl: Kubectl, args: argparse.Namespace, **kw: Any) -> None:
    route = kubectl.get_route(args.route)
    body = kubectl_views.patch_for(args.command, route, weight=getattr(args, "weight", None))
    kubectl.patch(args.route, body)
    print(f"canaryroute {args.route}: {kubectl_views.describe_patch(body)}", file=kw["out"])


def cmd_resume(kubectl: Kubectl, args: argparse.Namespace, **kw: Any) -> None:
    route = kubectl.get_route(args.route)
    out: TextIO = kw["out"]
    if (route.get("status") or {}).get("phase") == "RolledBack":
        kubectl.patch(args.route, {"spec": {"rollout": {"abort": True}}})
        print(
            f"canaryroute {args.route}: rolled back; aborting first so the rollout can be retried", file=out
        )
        route = _wait_for_phase(kubectl, args.route, "Aborted", timeout=args.timeout, sleep=kw["sleep"])
    body = kubectl_views.patch_for("resume", route)
    kubectl.patch(args.route, body)
    print(f"canaryroute {args.route}: {kubectl_views.describe_patch(body)}", file=out)


def _wait_for_phase(
    kubectl: Kubectl, name: str, phase: str, *, timeout: float, sleep: Callable[[float], None]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        route = kubectl.get_route(name)
        if (route.get("status") or {}).get("phase") == phase:
            return route
        if time.monotonic() >= deadline:
            raise PluginError(
                f"{name} did not reach phase {phase} within {timeout:g}s (is the operator running?)"
            )
        sleep(1.0)


def cmd_explain(kubectl: Kubectl, args: argparse.Namespace, **kw: Any) -> None:
    route = kubectl.get_route(args.route)
    body = kubectl_views.explain_request(
        route,
        headers=args.header,
        jwt=args.jwt,
        ip=args.ip,
        host=args.host,
        path=args.path,
        method=args.method,
        query=args.query,
    )
    admin = args.proxy_admin or kw["environ"].get("GRAYLANE_PROXY_ADMIN") or DEFAULT_PROXY_ADMIN
    answer = post_json(admin.rstrip("/") + "/explain", body)
    out: TextIO = kw["out"]
    print(kubectl_views.explain_summary(route, answer), file=out)
    print(json.dumps(answer, indent=2, sort_keys=True), file=out)


def post_json(url: str, body: Mapping[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise PluginError(f"--proxy-admin must be an http(s) URL, got {url!r}")
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read(1024 * 1024))
    except urllib.error.HTTPError as exc:
        raise PluginError(
            f"{url}: HTTP {exc.code}: {exc.read(4096).decode(errors='replace').strip()}"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PluginError(f"{url}: {exc}") from exc
    if not isinstance(answer, dict):
        raise PluginError(f"{url}: expected a JSON object")
    return answer


COMMANDS: dict[str, Callable[..., None]] = {
    "status": cmd_status,
    "set-weight": cmd_patch,
    "promote": cmd_patch,
    "abort": cmd_patch,
    "pause": cmd_patch,
    "resume": cmd_resume,
    "explain": cmd_explain,
}

if __name__ == "__main__":
    sys.exit(main())
