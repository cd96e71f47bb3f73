"""The CRDs on the real API server: every malformed CR in tests/bad_inputs/crs/ is rejected with the message
its header names (``# expect: ...``), and the annotated examples plus edge-valid values are accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cluster.kubectl import Kubectl
from kopfharness import OperatorNamespaces

ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((ROOT / "tests" / "bad_inputs" / "crs").glob("*.yaml"))


def expectation(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            return line.removeprefix("# expect:").strip()
    raise AssertionError(f"{path.name} has no '# expect:' header")


def test_the_corpus_is_there() -> None:
    assert len(BAD) >= 50


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_malformed_cr_is_rejected_by_the_api_server(
    path: Path, kubectl: Kubectl, operator_ns: OperatorNamespaces
) -> None:
    result = kubectl("create", "--dry-run=server", "-n", operator_ns.routes, "-f", str(path), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expectation(path) in result.stderr, result.stderr


def test_examples_and_edge_values_are_accepted(kubectl: Kubectl, operator_ns: OperatorNamespaces) -> None:
    ns = operator_ns.routes
    kubectl("apply", "-n", ns, "-f", str(ROOT / "examples" / "checkout"))
    for weight in ("0", "0.29", "12.34", "99.99", "100", "0.07", "33.33"):
        kubectl("patch", "canaryroute", "checkout", "-n", ns, "--type", "merge", "--dry-run=server",
                "-p", f'{{"spec":{{"weight":{weight}}}}}')  # fmt: skip
    for cidr in ("0.0.0.0/0", "2001:db8::/32", "10.1.2.3/32"):
        patch = f'{{"spec":{{"rules":[{{"name":"c","to":"canary","match":{{"sourceCIDRs":["{cidr}"]}}}}]}}}}'
        kubectl(
            "patch", "canaryroute", "checkout", "-n", ns, "--type", "merge", "--dry-run=server", "-p", patch
        )


def test_mirror_and_shadow_steps_are_accepted(kubectl: Kubectl, operator_ns: OperatorNamespaces) -> None:
    ns = operator_ns.routes
    kubectl("apply", "-n", ns, "-f", str(ROOT / "examples" / "checkout"))
    mirror = {"percent": 12.5, "methods": ["GET", "HEAD"], "maxBodyBytes": 10485760,
              "compare": {"body": True, "ignoreHeaders": ["X-Request-Id", "ETag"]}}  # fmt: skip
    rollout = {"steps": [{"mirror": 100, "pause": "10m"}, {"mirror": 0.01}, {"weight": 1}, {"weight": 100}],
               "analysis": {"maxMismatchRate": 0}}  # fmt: skip
    for spec in ({"mirror": mirror}, {"mirror": {"percent": 0}, "rollout": rollout}, {"rollout": rollout}):
        patch = json.dumps({"spec": spec})
        kubectl("patch", "croute", "checkout", "-n", ns, "--type", "merge", "--dry-run=server", "-p", patch)
