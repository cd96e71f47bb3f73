"""The compile step: CanaryRoute + Upstreams -> route document; errors name the resource's field path.

Aspects: the annotated example compiles (service URLs, metadata, version-routing candidates, the salt, the
mirrored secret name); each bad spec in a table fails with its path and reason; the weight keyword wins over
spec.weight and has one spelling; claims and conflicts; object names fit Kubernetes limits; selectors.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from graylane.compile import conflicts, names
from graylane.compile.route import CompileError, compile_route
from graylane.compile.selectors import selector_matches
from graylane.config.document import canonical_json, load_route_document

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checkout"


def example_objects(namespace: str = "shop") -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    route = yaml.safe_load((EXAMPLES / "canaryroute.yaml").read_text())
    route["metadata"].update(namespace=namespace, uid="uid-1", generation=3)
    upstreams = {}
    for doc in yaml.safe_load_all((EXAMPLES / "upstreams.yaml").read_text()):
        doc["metadata"]["namespace"] = namespace
        upstreams[doc["metadata"]["name"]] = doc
    return route, upstreams


def test_the_example_compiles_into_a_document_the_loader_accepts() -> None:
    route, upstreams = example_objects()
    doc = compile_route(route, upstreams)
    config = load_route_document(canonical_json(doc))
    assert (
        config.route.key == "shop/checkout" and config.route.uid == "uid-1" and config.route.generation == 3
    )
    assert doc["upstreams"]["checkout-v1"] == {
        "url": "http://checkout-v1.shop.svc:8080",
        "metadata": {"version": "v1", "region": "eu"},
        "timeoutSeconds": 30,
        "maxConnections": 256,
    }
    assert doc["upstreams"]["checkout-v2"]["url"] == "http://127.0.0.1:9002"
    assert doc["versionRouting"] == {
        "header": "X-Version",
        "metadataKey": "version",
        "candidates": ["checkout-v1", "checkout-v2"],
    }
    assert doc["weight"] == 5 and doc["salt"] == "shop/checkout" and doc["hosts"] == ["checkout.example.com"]
    assert [r["name"] for r in doc["rules"]] == [
        "qa",
        "opt-out",
        "beta-testers",
        "office",
        "uk-first",
        "debug",
    ]


def test_compiling_is_deterministic_and_the_weight_has_one_spelling() -> None:
    route, upstreams = example_objects()
    first = compile_route(route, upstreams, weight=30.0)
    assert first == compile_route(copy.deepcopy(route), upstreams, weight=30)
    assert '"weight":30}' in canonical_json(first)
    assert compile_route(route, upstreams, weight=12.5)["weight"] == 12.5
    assert compile_route(route, upstreams)["weight"] == 5  # None -> spec.weight


def test_upper_case_hosts_are_lowered_and_deduplicated() -> None:
    route, upstreams = example_objects()
    route["spec"]["hosts"] = ["Checkout.Example.COM", "checkout.example.com"]
    assert compile_route(route, upstreams)["hosts"] == ["checkout.example.com"]


def test_secret_ref_names_the_mirror_never_the_secret() -> None:
    route, upstreams = example_objects()
    route["spec"]["jwt"] = {
        "issuer": "https://a",
        "algorithms": ["HS256"],
        "secretRef": {"name": "mine", "key": "k"},
    }
    doc = compile_route(route, upstreams)
    assert doc["jwt"]["secretRef"] == {"name": "graylane-jwt-shop-checkout", "key": "k"}


def test_tls_names_the_mirror_and_offers_it_for_the_dns_hosts() -> None:
    route, upstreams = example_objects()
    route["spec"]["hosts"] = ["Checkout.example.com", "*.shop.example.com", "10.0.0.7"]
    route["spec"]["tls"] = {"secretName": "checkout-tls", "redirectHTTP": True}
    doc = compile_route(route, upstreams)
    assert doc["tls"] == {"secretName": "graylane-tls-shop-checkout", "redirectHTTP": True,
                          "hosts": ["checkout.example.com", "*.shop.example.com"]}  # fmt: skip
    config = load_route_document(canonical_json(doc))
    assert config.tls is not None and config.tls.hosts == ("checkout.example.com", "*.shop.example.com")
    del route["spec"]["tls"]
    assert "tls" not in compile_route(route, upstreams)  # documents without TLS are as before, byte for byte


def test_a_version_routing_selector_that_matches_nothing_has_no_candidates() -> None:
    route, upstreams = example_objects()
    route["spec"]["versionRouting"]["upstreamSelector"] = {"matchLabels": {"app": "other"}}
    assert compile_route(route, upstreams)["versionRouting"]["candidates"] == []


def _rules(**match: Any) -> list[dict[str, Any]]:
    return [{"name": "r", "to": "canary", "match": match}]


BAD_SPECS = [
    ("bad-regex", {"rules": _rules(headers=[{"name": "X", "regex": "(a)\\1"}])},
     "spec.rules[0].match.headers[0].regex", "Invalid"),
    ("lookbehind", {"rules": _rules(path={"regex": "(?<=a)b"})}, "spec.rules[0].match.path.regex", "Invalid"),
    ("two-operators", {"rules": _rules(query=[{"name": "q", "exact": "1", "prefix": "2"}])},
     "spec.rules[0].match.query[0]", "Invalid"),
    ("cidr", {"rules": _rules(sourceCIDRs=["10.0.0.1/8"])}, "spec.rules[0].match.sourceCIDRs[0]", "Invalid"),
    ("weight", {"weight": 101}, "spec.weight", "Invalid"),
    ("decimals", {"weight": 1.234}, "spec.weight", "Invalid"),
    ("host", {"hosts": ["bad host"]}, "spec.hosts[0]", "Invalid"),
    ("path", {"pathPrefix": "/a/../b"}, "spec.pathPrefix", "Invalid"),
    ("set-host", {"requestHeaders": {"canary": {"set": {"Host": "x"}}}},
     "spec.requestHeaders.canary.set.Host", "Invalid"),
    ("unknown", {"weigth": 3}, "spec.weigth", "Invalid"),
    ("missing-stable", {"stable": "nope"}, "spec.stable", "UpstreamNotFound"),
    ("missing-canary", {"canary": "nope"}, "spec.canary", "UpstreamNotFound"),
    ("tls-secret-name", {"tls": {"secretName": "Not_A_Name"}}, "spec.tls.secretName", "Invalid"),
    ("tls-no-dns-host", {"hosts": ["10.0.0.1"], "tls": {"secretName": "t"}}, "spec.tls", "Invalid"),
    ("tls-any-host", {"hosts": [], "tls": {"secretName": "t"}}, "spec.tls", "Invalid"),
    ("tls-unknown", {"tls": {"secretName": "t", "hostz": []}}, "spec.tls.hostz", "Invalid"),
    ("tls-redirect", {"tls": {"secretName": "t", "redirectHTTP": "yes"}}, "spec.tls.redirectHTTP", "Invalid"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "spec", "path", "reason"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_specs_fail_with_the_field_path(case: str, spec: dict[str, Any], path: str, reason: str) -> None:
    route, upstreams = example_objects()
    route["spec"].update(spec)
    with pytest.raises(CompileError) as info:
        compile_route(route, upstreams)
    assert info.value.reason == reason
    assert any(str(e).startswith(path) for e in info.value.errors), info.value.errors
    assert path in info.value.message


def test_a_bad_upstream_is_reported_on_the_upstream() -> None:
    route, upstreams = example_objects()
    upstreams["checkout-v2"]["spec"]["url"] = "http://user:pw@10.0.0.1/"
    with pytest.raises(CompileError) as info:
        compile_route(route, upstreams)
    assert [str(e).split(":")[0] for e in info.value.errors] == ["Upstream checkout-v2"]
    assert "spec.url" in info.value.message


def test_claims_and_the_older_route_wins() -> None:
    def claim(name: str, created: str, hosts: list[str], prefix: str = "/") -> conflicts.RouteClaim:
        return conflicts.route_claim({"metadata": {"name": name, "namespace": "n", "uid": name,
                                                "creationTimestamp": created},
                                   "spec": {"hosts": hosts, "pathPrefix": prefix}})  # fmt: skip

    old = claim("old", "2026-01-01T00:00:00Z", ["a.example.com"])
    young = claim("young", "2026-01-02T00:00:00Z", ["A.example.com.", "b.example.com"])
    other_path = claim("other", "2026-01-03T00:00:00Z", ["a.example.com"], "/api")
    anyhost1 = claim("any1", "2026-01-01T00:00:00Z", [])
    anyhost2 = claim("any2", "2026-01-01T00:00:00Z", [])
    assert conflicts.find_conflict(young, [old, other_path]) == (old, "a.example.com", "/")
    assert conflicts.find_conflict(old, [young, other_path]) is None
    assert conflicts.find_conflict(other_path, [old, young]) is None
    # a tie: by name
    assert conflicts.find_conflict(anyhost2, [anyhost1]) == (
        anyhost1,
        conflicts.ANY_HOST,
        "/",
    )  # tie: by name
    assert conflicts.find_conflict(anyhost1, [anyhost2]) is None


def test_object_names_fit_kubernetes_limits() -> None:
    assert names.route_configmap_name("shop", "checkout") == "graylane-route-shop-checkout"
    long_ns, long_name = "n" * 63, "r" * 253
    name = names.route_configmap_name(long_ns, long_name)
    assert len(name) <= 253 and name != names.route_configmap_name(long_ns, long_name[:-1] + "x")
    assert names.hashed_configmap_name("a-b", "c") != names.hashed_configmap_name("a", "b-c")
    assert names.route_configmap_name("a-b", "c") == names.route_configmap_name("a", "b-c")
    labels = names.route_labels(long_ns, long_name, "uid")
    assert all(len(v) <= 63 for v in labels.values())
    assert len(names.mirrored_secret_name(long_ns, long_name)) <= 253
    tls = names.mirrored_secret_name(long_ns, long_name, "tls")
    assert len(tls) <= 253 and tls.startswith("graylane-tls-")
    assert tls != names.mirrored_secret_name(long_ns, long_name)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        ({"matchExpressions": [{"key": "v", "operator": "In", "values": ["1", "2"]}]}, {"v": "2"}, True),
        ({"matchExpressions": [{"key": "v", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "v", "operator": "Exists"}]}, {"w": "1"}, False),
        ({"matchExpressions": [{"key": "v", "operator": "DoesNotExist"}]}, {"w": "1"}, True),
        ({}, {"app": "a"}, False),
        (None, {"app": "a"}, False),
    ],
)
def test_label_selectors(selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected
