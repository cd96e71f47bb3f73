"""Least-privilege RBAC: no wildcards, nothing cluster-wide for the proxy, Secrets only when enabled."""

from __future__ import annotations

import json
from typing import Any

from chart_render import RELEASE, SCENARIOS, Manifests

OPERATOR_SA = f"{RELEASE}-graylane-operator"
PROXY_SA = f"{RELEASE}-graylane-proxy"
GATEWAY_PROXY_SA = f"{PROXY_SA}-gateway"  # the Gateways' proxies (gatewayAPI.enabled)
DANGEROUS_VERBS = {"escalate", "bind", "impersonate", "deletecollection"}
Rule = dict[str, Any]


def _rules_for(m: Manifests, sa: str) -> list[tuple[str, str | None, Rule]]:
    """(role kind, namespace or None for cluster-wide, rule) for every rule bound to the ServiceAccount."""
    out = []
    for role in m.of_kind("Role", "ClusterRole"):
        if sa in m.bound_service_accounts(role["kind"], role["metadata"]["name"]):
            ns = role["metadata"].get("namespace")
            out += [(role["kind"], ns, rule) for rule in role.get("rules", [])]
    return out


def _grants(rules: list[tuple[str, str | None, Rule]], resource: str) -> dict[str | None, set[str]]:
    """namespace (None: cluster-wide) → verbs granted on the resource."""
    grants: dict[str | None, set[str]] = {}
    for _, ns, rule in rules:
        if resource in rule.get("resources", []):
            grants.setdefault(ns, set()).update(rule["verbs"])
    return grants


def test_no_rule_uses_a_wildcard_or_a_dangerous_verb(rendered: Manifests) -> None:
    for role in rendered.of_kind("Role", "ClusterRole"):
        assert "aggregationRule" not in role
        for rule in role.get("rules", []):
            where = f"{role['kind']}/{role['metadata']['name']}: {rule}"
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in rule.get(field, [])), where
            assert "nonResourceURLs" not in rule, where
            assert not DANGEROUS_VERBS & set(rule["verbs"]), where
            assert not {"pods", "pods/exec", "serviceaccounts/token", "nodes"} & set(rule["resources"]), where


def test_every_binding_targets_a_chart_role_and_a_chart_service_account(rendered: Manifests) -> None:
    roles = {
        (r["kind"], r["metadata"]["name"], r["metadata"].get("namespace")) for r in rendered.of_kind("Role")
    }
    cluster_roles = {r["metadata"]["name"] for r in rendered.of_kind("ClusterRole")}
    for binding in rendered.of_kind("RoleBinding", "ClusterRoleBinding"):
        ref = binding["roleRef"]
        if ref["kind"] == "Role":
            assert ("Role", ref["name"], binding["metadata"]["namespace"]) in roles
        else:
            assert ref["name"] in cluster_roles
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert subject["name"] in {OPERATOR_SA, PROXY_SA, GATEWAY_PROXY_SA}
            assert subject["namespace"] == rendered.namespace


def test_the_proxy_has_nothing_cluster_wide(rendered: Manifests) -> None:
    for binding in rendered.of_kind("ClusterRoleBinding"):
        assert not {PROXY_SA, GATEWAY_PROXY_SA} & {s["name"] for s in binding["subjects"]}
    assert not [r for r in rendered.of_kind("ClusterRole") if "proxy" in r["metadata"]["name"]]


def test_the_proxy_only_reads_its_own_namespace(rendered: Manifests, scenario: str) -> None:
    rules = _rules_for(rendered, PROXY_SA)
    assert {kind for kind, _, _ in rules} == {"Role"}
    assert {ns for _, ns, _ in rules} == {rendered.namespace}
    values = SCENARIOS[scenario]
    reads_secrets = values.get("jwtSecrets", {}).get("enabled") or values.get("tls", {}).get("enabled")
    expected = {"configmaps"} | ({"secrets"} if reads_secrets else set())
    assert {res for _, _, rule in rules for res in rule["resources"]} == expected
    for _, _, rule in rules:
        assert rule["apiGroups"] == [""]
        assert set(rule["verbs"]) == {"get", "list", "watch"}


def test_gateway_proxies_read_configmaps_and_secrets_of_their_namespace_only(
    rendered: Manifests, scenario: str
) -> None:
    """Their own ServiceAccount (the certificate copies need Secret reads; the chart's proxies get none)."""
    rules = _rules_for(rendered, GATEWAY_PROXY_SA)
    if not SCENARIOS[scenario].get("gatewayAPI", {}).get("enabled"):
        assert rules == [] and not [a for a in rendered.of_kind("ServiceAccount")
                                    if a["metadata"]["name"] == GATEWAY_PROXY_SA]  # fmt: skip
        return
    assert (
        _grants(rules, "secrets")
        == _grants(rules, "configmaps")
        == {rendered.namespace: {"get", "list", "watch"}}
    )
    assert {res for _, _, rule in rules for res in rule["resources"]} == {"configmaps", "secrets"}
    (template,) = [cm for cm in rendered.of_kind("ConfigMap") if "pod-template.json" in cm.get("data", {})]
    assert json.loads(template["data"]["pod-template.json"])["spec"]["serviceAccountName"] == GATEWAY_PROXY_SA


def test_operator_writes_configmaps_only_in_the_install_namespace(rendered: Manifests) -> None:
    grants = _grants(_rules_for(rendered, OPERATOR_SA), "configmaps")
    assert grants == {rendered.namespace: {"get", "list", "watch", "create", "update", "patch", "delete"}}


def test_operator_reads_endpointslices_only_in_the_install_namespace(rendered: Manifests) -> None:
    grants = _grants(_rules_for(rendered, OPERATOR_SA), "endpointslices")
    assert grants == {rendered.namespace: {"get", "list", "watch"}}


def test_operator_secret_access_follows_the_jwt_and_tls_settings(rendered: Manifests, scenario: str) -> None:
    values = SCENARIOS[scenario]
    grants = _grants(_rules_for(rendered, OPERATOR_SA), "secrets")
    jwt, tls = values.get("jwtSecrets", {}).get("enabled"), values.get("tls", {}).get("enabled")
    if values.get("gatewayAPI", {}).get("enabled"):
        assert grants.pop(None) == {"list", "watch"}  # listener certificateRefs, in any namespace
        if not (jwt or tls):  # the copies of the listeners' certificates
            assert grants == {rendered.namespace: {"create", "patch", "delete"}}
            return
    if not (jwt or tls):
        assert grants == {}
        return
    watch = values.get("watch", {})
    assert grants.pop(rendered.namespace) >= {"create", "update", "get"}  # the mirrored Secrets it owns
    # route namespaces: read a referenced Secret (HS* keys); follow certificate renewals (tls)
    verbs = {"get", "list", "watch"} if tls else {"get"}
    if watch.get("allNamespaces"):
        assert grants == {None: verbs}
    else:
        assert grants == {ns: verbs for ns in watch["namespaces"]}


def test_operator_custom_resource_rights_are_scoped_to_the_watched_namespaces(
    rendered: Manifests, scenario: str
) -> None:
    watch = SCENARIOS[scenario].get("watch", {})
    rules = _rules_for(rendered, OPERATOR_SA)
    expected_scopes = (
        {None} if watch.get("allNamespaces") else set(watch.get("namespaces") or [rendered.namespace])
    )
    for resource, verbs in [
        ("canaryroutes", {"get", "list", "watch", "patch"}),
        ("upstreams", {"get", "list", "watch", "patch"}),
        ("canaryroutes/status", {"get", "patch", "update"}),
        ("upstreams/status", {"get", "patch", "update"}),
        ("events", {"create"}),
    ]:
        grants = _grants(rules, resource)
        assert set(grants) == expected_scopes, resource
        assert all(v == verbs for v in grants.values()), (resource, grants)
    for _, _, rule in rules:
        if set(rule["resources"]) & {"canaryroutes", "upstreams"}:
            assert rule["apiGroups"] == ["graylane.io"]


def test_operator_peering_rights_name_the_peering_object(rendered: Manifests, scenario: str) -> None:
    watch = SCENARIOS[scenario].get("watch", {})
    resource = "clusterkopfpeerings" if watch.get("allNamespaces") else "kopfpeerings"
    for _, _, rule in _rules_for(rendered, OPERATOR_SA):
        if resource in rule["resources"]:
            assert rule["apiGroups"] == ["kopf.dev"]
            if {"get", "patch"} & set(rule["verbs"]):
                assert rule["resourceNames"] == ["graylane"]
            else:
                assert set(rule["verbs"]) == {"list", "watch"}


def test_cluster_roles_exist_only_in_all_namespaces_mode_or_for_crd_watch(
    rendered: Manifests, scenario: str
) -> None:
    values = SCENARIOS[scenario]
    allowed = (
        {f"{OPERATOR_SA}-{rendered.namespace}"} if values.get("watch", {}).get("allNamespaces") else set()
    )
    if values.get("operator", {}).get("watchCRDs"):
        allowed.add(f"{OPERATOR_SA}-{rendered.namespace}-crds")
    if values.get("gatewayAPI", {}).get("enabled"):
        allowed.add(f"{OPERATOR_SA}-{rendered.namespace}-gateway-api")
    assert {r["metadata"]["name"] for r in rendered.of_kind("ClusterRole")} == allowed
    assert {r["metadata"]["name"] for r in rendered.of_kind("ClusterRoleBinding")} == allowed


def test_crd_read_access_is_read_only(rendered: Manifests) -> None:
    for _, ns, rule in _rules_for(rendered, OPERATOR_SA):
        if "customresourcedefinitions" in rule["resources"]:
            assert ns is None and set(rule["verbs"]) <= {"get", "list", "watch"}
            if rule["verbs"] == ["get"]:  # the Gateway API controller reads one CRD's bundle version
                assert rule["resourceNames"] == ["gateways.gateway.networking.k8s.io"]


def test_gateway_api_rights_exist_only_when_enabled(rendered: Manifests, scenario: str) -> None:
    rules = _rules_for(rendered, OPERATOR_SA)
    gateway = [(ns, rule) for _, ns, rule in rules if "gateway.networking.k8s.io" in rule["apiGroups"]]
    provisioned = {ns: verbs for ns, verbs in _grants(rules, "deployments").items()}
    policies = _grants(rules, "trafficpolicies"), _grants(rules, "trafficpolicies/status")
    if not SCENARIOS[scenario].get("gatewayAPI", {}).get("enabled"):
        assert gateway == [] and provisioned == {} and _grants(rules, "services") == {}
        assert policies == ({}, {}), "TrafficPolicies are read only by the Gateway controller"
        assert not [o for o in rendered.of_kind("GatewayClass")]
        return
    assert {ns for ns, _ in gateway} == {None}
    writes = {r for _, rule in gateway if "patch" in rule["verbs"] for r in rule["resources"]}
    assert writes == {"gatewayclasses/status", "gateways/status", "httproutes/status"}, "status only"
    assert provisioned == {rendered.namespace: {"get", "list", "watch", "create", "patch", "delete"}}
    assert policies == ({None: {"get", "list", "watch"}}, {None: {"patch"}}), "read, and status patches only"
    assert _grants(rules, "services") == {
        None: {"list", "watch"},
        rendered.namespace: provisioned[rendered.namespace],
    }
    (klass,) = rendered.of_kind("GatewayClass")
    assert klass["spec"]["controllerName"] == "graylane.io/gateway-controller"
