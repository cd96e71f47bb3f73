"""Traffic from the host through the proxy Service's ClusterIP to backend pods, as the chart runs Graylane."""

from __future__ import annotations

import json
from collections import Counter

from cluster.kubectl import Kubectl
from cluster.podstack import PodStack
from cryptography.hazmat.primitives.asymmetric import ec
from podtest import ROUTE, Signer


def split(pods: PodStack, users: range, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Which version each user gets (one request per user, keyed by X-User-Id)."""
    got = {}
    for i in users:
        status, body = pods.get("/", {"X-User-Id": f"user-{i}"} | (headers or {}))
        assert status == 200, body
        got[f"user-{i}"] = body.decode().strip()
    return got


def test_the_chart_runs_as_restricted_pods_from_images_built_here(pods: PodStack, kubectl: Kubectl) -> None:
    for component, image in (("operator", "graylane-operator"), ("proxy", "graylane-proxy")):
        running = pods.pods(component)
        assert len(running) == 2, [p["metadata"]["name"] for p in running]
        for pod in running:
            (container,) = pod["spec"]["containers"]
            assert container["image"] == f"graylane/{image}:{pods.tag}"
            assert all(s["ready"] for s in pod["status"]["containerStatuses"])
    for ns in (pods.namespace, pods.apps):
        labels = kubectl.json("get", "namespace", ns)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        seen = kubectl.json("get", "events", "-n", ns)["items"]
        pulls = [e["message"] for e in seen if e["reason"] in ("Pulling", "Pulled", "Failed")]
        assert pulls and all("already present on machine" in m for m in pulls), pulls  # nothing pulled


def test_the_split_follows_the_weight_and_a_patch(pods: PodStack, kubectl: Kubectl) -> None:
    before = split(pods, range(400))
    share = Counter(before.values())["v2"] / 400
    assert set(before.values()) == {"v1", "v2"} and 0.12 <= share <= 0.28, Counter(before.values())
    kubectl.set_weight("checkout", pods.apps, 50)
    try:
        seconds = pods.wait_weight(ROUTE, 50)
        print(f"weight 50 served by every proxy pod {seconds:.3f} s after kubectl patch returned")
        after = split(pods, range(400))
        assert 0.40 <= Counter(after.values())["v2"] / 400 <= 0.60, Counter(after.values())
        assert all(after[u] == "v2" for u, v in before.items() if v == "v2"), "a canary user moved back"
    finally:
        kubectl.set_weight("checkout", pods.apps, 20)
        pods.wait_weight(ROUTE, 20)


def test_a_header_overrides_the_split(pods: PodStack) -> None:
    assert set(split(pods, range(50), {"X-Canary": "true"}).values()) == {"v2"}
    assert set(split(pods, range(50), {"X-Canary": "false"}).values()) == {"v1"}
    assert set(split(pods, range(50), {"X-Version": "v1"}).values()) == {"v1"}


def test_only_a_verified_jwt_claim_routes(pods: PodStack, signer: Signer) -> None:
    plain = split(pods, range(200))
    stable_users = [u for u, v in plain.items() if v == "v1"][:40]
    assert len(stable_users) == 40
    forger = Signer(ec.generate_private_key(ec.SECP256R1()))  # same claims, a key the route does not trust
    for user in stable_users:
        claims = {"sub": user, "role": ["beta-tester"]}
        genuine = {"Authorization": f"Bearer {signer.token(**claims)}", "X-User-Id": user}
        forged = {"Authorization": f"Bearer {forger.token(**claims)}", "X-User-Id": user}
        assert pods.get("/", genuine)[1].decode().strip() == "v2"
        assert (
            pods.get("/", forged)[1].decode().strip() == "v1"
        )  # not trusted: no claims, the split as before


def test_the_backend_sees_the_track_the_proxy_chose(pods: PodStack) -> None:
    for headers, version in (({"X-Canary": "true"}, "v2"), ({"X-Canary": "false"}, "v1")):
        forged = {"X-Graylane-Track": "forged"} | headers
        status, body = pods.get("/echo", forged)
        assert status == 200, body
        echo = json.loads(body)
        seen = {k.lower(): v for k, v in echo["headers"].items()}
        track = "canary" if version == "v2" else "stable"
        assert echo["version"] == version and seen["x-graylane-track"] == track, seen
        assert seen["x-feature-new-checkout"] == ("on" if version == "v2" else "off")
