"""Specs the API server accepts but the operator must refuse, explain and recover from, one route at a time.

Aspects:
- a regex RE2 rejects -> Ready=False/Invalid naming the field path, no hot retry loop, a good route beside it
  is served;
- a missing Upstream -> UpstreamNotFound, recovering by itself when it appears; Upstream edits re-render;
- a host/path claimed by an older route -> Conflict, recovering when the older route goes;
- an HS* secretRef while mirroring is off -> SecretMirroringDisabled; with mirroring on, a missing Secret ->
  SecretNotFound, then the Secret is mirrored into the install namespace and never into the ConfigMap.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

from cluster.kubectl import Kubectl
from kopfharness import (
    OperatorNamespaces,
    OperatorProcess,
    reason_is,
    route,
    route_configmaps,
    route_document,
)
from waiting import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"
StartOperator = Callable[..., OperatorProcess]


def test_re2_rejected_regex_is_invalid_with_its_path_and_does_not_block_others(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "upstreams.yaml"))
    bad_rules = [{"name": "qa", "to": "canary", "match": {"headers": [{"name": "X-A", "regex": "(a)\\1"}]}}]
    kubectl.apply([route("bad", ns, rules=bad_rules), route("good", ns)])
    operator = start_operator()
    cond = eventually(lambda: reason_is(kubectl, ns, "bad", "Invalid"), what="bad route is Invalid")
    assert cond["status"] == "False"
    assert "spec.rules[0].match.headers[0].regex" in cond["message"]
    assert "RE2" in cond["message"]
    eventually(lambda: reason_is(kubectl, ns, "good", "Compiled"), what="the good route is served")
    assert set(route_configmaps(kubectl, operator_ns.config)) == {f"graylane-route-{ns}-good"}
    version = kubectl.json("get", "canaryroute", "bad", "-n", ns)["metadata"]["resourceVersion"]
    # Two more resync passes over every route (the bad one included): a hot retry loop, or a reconcile that
    # does not skip a no-op, would rewrite the status and bump the version.
    passes = operator.log().count("Resynced")
    eventually(lambda: operator.log().count("Resynced") >= passes + 2, what="two more resync passes")
    assert kubectl.json("get", "canaryroute", "bad", "-n", ns)["metadata"]["resourceVersion"] == version


def test_missing_upstream_is_reported_and_recovers_when_it_appears(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    start_operator()
    kubectl.apply(route("checkout", ns))
    cond = eventually(lambda: reason_is(kubectl, ns, "checkout", "UpstreamNotFound"), what="UpstreamNotFound")
    assert "spec.stable" in cond["message"] and "checkout-v1" in cond["message"]
    assert cond["status"] == "False"
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "upstreams.yaml"))
    eventually(
        lambda: reason_is(kubectl, ns, "checkout", "Compiled"), what="recovers when the Upstream appears"
    )
    doc = route_document(route_configmaps(kubectl, operator_ns.config)[f"graylane-route-{ns}-checkout"])
    assert doc["upstreams"]["checkout-v2"]["url"] == "http://127.0.0.1:9002"
    kubectl(
        "patch",
        "upstream",
        "checkout-v2",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"url":"http://127.0.0.1:9009"}}',
    )
    eventually(
        lambda: (
            route_document(route_configmaps(kubectl, operator_ns.config)[f"graylane-route-{ns}-checkout"])[
                "upstreams"
            ]["checkout-v2"]["url"]
            == "http://127.0.0.1:9009"
        ),
        what="an Upstream change re-renders the routes that use it",
    )


def test_host_path_claimed_by_an_older_route_is_a_conflict_until_it_goes(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "upstreams.yaml"))
    start_operator()
    kubectl.apply(route("older", ns, hosts=["shop.example.com"]))
    eventually(lambda: reason_is(kubectl, ns, "older", "Compiled"), what="older Ready")
    time.sleep(1.1)  # creationTimestamp has one-second resolution: make "older" strictly older
    kubectl.apply(route("younger", ns, hosts=["SHOP.example.com"]))
    cond = eventually(lambda: reason_is(kubectl, ns, "younger", "Conflict"), what="younger is in Conflict")
    assert f"older route {ns}/older" in cond["message"] and "spec.hosts" in cond["message"]
    assert set(route_configmaps(kubectl, operator_ns.config)) == {f"graylane-route-{ns}-older"}
    kubectl("delete", "canaryroute", "older", "-n", ns)
    eventually(lambda: reason_is(kubectl, ns, "younger", "Compiled"), what="younger takes over")
    eventually(
        lambda: set(route_configmaps(kubectl, operator_ns.config)) == {f"graylane-route-{ns}-younger"},
        what="only the younger route's ConfigMap remains",
    )


def test_hs_secret_ref_needs_mirroring_and_the_secret(
    kubectl: Kubectl, operator_ns: OperatorNamespaces, start_operator: StartOperator
) -> None:
    ns = operator_ns.routes
    kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "upstreams.yaml"))
    jwt = {
        "issuer": "https://auth.example.com",
        "algorithms": ["HS256"],
        "secretRef": {"name": "jwt", "key": "k"},
    }
    kubectl.apply(route("hs", ns, jwt=jwt))
    off = start_operator()
    cond = eventually(lambda: reason_is(kubectl, ns, "hs", "SecretMirroringDisabled"), what="mirroring off")
    assert "spec.jwt.secretRef" in cond["message"] and "--mirror-jwt-secrets" in cond["message"]
    off.stop()
    start_operator("--mirror-jwt-secrets")
    cond = eventually(lambda: reason_is(kubectl, ns, "hs", "SecretNotFound"), what="the Secret is missing")
    assert "spec.jwt.secretRef.name" in cond["message"]
    secret_value = "s3cret-hmac-key-of-32-bytes-long!"
    kubectl("create", "secret", "generic", "jwt", "-n", ns, f"--from-literal=k={secret_value}")
    eventually(lambda: reason_is(kubectl, ns, "hs", "Compiled"), what="recovers once the Secret exists")
    mirror = kubectl.json("get", "secret", f"graylane-jwt-{ns}-hs", "-n", operator_ns.config)
    assert base64.b64decode(mirror["data"]["k"]).decode() == secret_value
    cm = route_configmaps(kubectl, operator_ns.config)[f"graylane-route-{ns}-hs"]
    assert secret_value not in cm["data"]["route.json"]
    assert base64.b64encode(secret_value.encode()).decode() not in cm["data"]["route.json"]
    assert route_document(cm)["jwt"]["secretRef"] == {"name": f"graylane-jwt-{ns}-hs", "key": "k"}
    kubectl("delete", "canaryroute", "hs", "-n", ns)
    eventually(
        lambda: (
            kubectl(
                "get", "secret", f"graylane-jwt-{ns}-hs", "-n", operator_ns.config, check=False
            ).returncode
        ),
        what="the mirrored Secret goes with its route",
    )
