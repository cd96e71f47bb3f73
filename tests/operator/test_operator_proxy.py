"""Operator and a kube-mode proxy on the same control plane: a kubectl weight patch reaches the proxy.

The one-second bar is measured by ``make bench-propagation`` (p50/p99 over 20 patches); this test proves
the path works end to end and prints the delay it saw, without asserting on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from cluster.kubectl import Kubectl
from kopfharness import OperatorNamespaces, OperatorProcess, ProxyProcess
from waiting import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"


def test_weight_patch_reaches_a_kube_mode_proxy(
    kubectl: Kubectl,
    operator_ns: OperatorNamespaces,
    start_operator: Callable[..., OperatorProcess],
    kube_proxy: ProxyProcess,
) -> None:
    ns = operator_ns.routes
    key = f"{ns}/checkout"
    start_operator()
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES))
    first = eventually(lambda: kube_proxy.route(key), what="the proxy loads the compiled route", within=60)
    assert first["weight"] == 5 and first["stable"] == "checkout-v1" and first["serving"]
    for weight in (30, 0.5, 100):
        started = time.monotonic()
        kubectl.set_weight("checkout", ns, weight)
        entry = eventually(
            lambda weight=weight: (r := kube_proxy.route(key)) and r["weight"] == weight and r,
            what=f"the proxy serves weight {weight}",
            interval=0.02,
        )
        print(f"weight {weight}: applied by the proxy {time.monotonic() - started:.3f}s after kubectl patch")
        route = kubectl.json("get", "canaryroute", "checkout", "-n", ns)
        assert entry["generation"] == route["metadata"]["generation"]
