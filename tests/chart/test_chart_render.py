"""The chart lints clean, renders valid Kubernetes objects for every value set, and refuses bad values."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_render import CHART_DIR, RELEASE, SCENARIOS, HelmError, Manifests, render, run_helm, values_file
from conformance import suite as gateway_suite

K8S_VERSION = "1.35"  # the test control plane's version
OLDEST_SUPPORTED = "1.30"  # Chart.yaml kubeVersion
CUSTOM_KINDS = {"KopfPeering", "ClusterKopfPeering", "ServiceMonitor", "GatewayClass"}
GATEWAY_CLASS_CRD = "gateway.networking.k8s.io_gatewayclasses.yaml"


def test_helm_lint_strict_is_clean(chart_helm: Path, scenario: str, tmp_path: Path) -> None:
    out = run_helm(
        chart_helm, "lint", "--strict", str(CHART_DIR), "-f", str(values_file(tmp_path, SCENARIOS[scenario]))
    )
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize("k8s_version", [OLDEST_SUPPORTED, K8S_VERSION])
def test_rendered_objects_match_the_kubernetes_schemas(rendered: Manifests, k8s_version: str) -> None:
    checked = 0
    for obj in rendered.objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {err.message} at {list(err.path)}")
        checked += 1
    assert checked >= 12, "the scenario rendered suspiciously few built-in objects"


def test_older_clusters_are_refused_by_the_kube_version_constraint(chart_helm: Path) -> None:
    with pytest.raises(HelmError, match="kubeVersion"):
        run_helm(chart_helm, "template", RELEASE, str(CHART_DIR), "--kube-version", "1.29.9")
    assert "kind: Deployment" in run_helm(
        chart_helm, "template", RELEASE, str(CHART_DIR), "--kube-version", f"{OLDEST_SUPPORTED}.0"
    )


def test_custom_objects_match_their_crds(chart_helm: Path, rendered: Manifests, tmp_path: Path) -> None:
    crds = {
        d["spec"]["names"]["kind"]: d
        for d in render(chart_helm, tmp_path, {}, crds=True)
        if d["kind"] == "CustomResourceDefinition"
    }
    for obj in rendered.of_kind("KopfPeering", "ClusterKopfPeering"):
        crd = crds[obj["kind"]]
        group, version = obj["apiVersion"].split("/")
        assert crd["spec"]["group"] == group
        assert crd["spec"]["scope"] == ("Cluster" if obj["kind"].startswith("Cluster") else "Namespaced")
        schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
        jsonschema.validate(obj, schema)
    for klass in rendered.of_kind("GatewayClass"):  # against the pinned Gateway API CRD (make gateway-api)
        crd = yaml.safe_load((gateway_suite.crds(download=False) / GATEWAY_CLASS_CRD).read_text())
        schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
        jsonschema.validate(klass, schema)
    for monitor in rendered.of_kind("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["endpoints"] == [{"port": "admin", "path": "/metrics", "interval": "15s"}]


def test_the_crds_are_valid_apiextensions_objects(chart_helm: Path, tmp_path: Path) -> None:
    crds = [d for d in render(chart_helm, tmp_path, {}, crds=True) if d["kind"] == "CustomResourceDefinition"]
    assert {c["metadata"]["name"] for c in crds} >= {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}
    for crd in crds:
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)


def test_every_scenario_object_is_in_the_expected_namespace(rendered: Manifests, scenario: str) -> None:
    watch = SCENARIOS[scenario].get("watch", {})
    allowed = {rendered.namespace, *watch.get("namespaces", [])}
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering", "GatewayClass"}
    for obj in rendered.objects:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert ns is None
        else:
            assert ns in allowed, f"{obj['kind']}/{obj['metadata']['name']} rendered into {ns!r}"


def test_proxy_deployment_is_production_shaped(rendered: Manifests, scenario: str) -> None:
    values = SCENARIOS[scenario].get("proxy", {})
    deploy = rendered.deployment("proxy")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert "--kube" in args and f"--namespace={rendered.namespace}" in args
    assert f"--workers={values.get('workers', 1)}" in args
    for cidr in values.get("trustedProxies", []):
        assert f"--trusted-proxy={cidr}" in args
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert f"--admin-listen=0.0.0.0:{ports['admin']}" in args and f"--listen=0.0.0.0:{ports['http']}" in args
    tls = SCENARIOS[scenario].get("tls", {}).get("enabled", False)
    assert ("https" in ports) is tls and bool([a for a in args if a.startswith("--listen-tls")]) is tls
    if tls:
        service = values.get("service", {}).get("tlsPort", 443)
        assert f"--listen-tls=0.0.0.0:{ports['https']}" in args and f"--https-redirect-port={service}" in args
        default = values.get("tls", {}).get("defaultSecret")
        expected = [f"--default-tls-secret={default}"] if default else []
        assert [a for a in args if a.startswith("--default-tls")] == expected
    (operator,) = rendered.deployment("operator")["spec"]["template"]["spec"]["containers"]
    assert ("--mirror-tls-secrets" in operator["args"]) is tls
    flags = dict(a.split("=", 1) for a in args if a.startswith("--drain-"))
    assert flags == {
        "--drain-delay": str(values.get("drainDelaySeconds", 5)),
        "--drain-timeout": str(values.get("drainTimeoutSeconds", 25)),
    }
    assert pod["terminationGracePeriodSeconds"] > sum(int(v) for v in flags.values())
    assert container["resources"]["requests"]["cpu"]
    assert pod["serviceAccountName"] == f"{RELEASE}-graylane-proxy"
    autoscaled = values.get("autoscaling", {}).get("enabled", False)
    assert ("replicas" in deploy["spec"]) is not autoscaled
    assert len(rendered.of_kind("HorizontalPodAutoscaler")) == int(autoscaled)


def test_admin_port_is_never_on_the_traffic_service(rendered: Manifests, scenario: str) -> None:
    traffic = rendered.named("Service", f"{RELEASE}-graylane-proxy")
    admin = rendered.named("Service", f"{RELEASE}-graylane-proxy-admin")
    tls = SCENARIOS[scenario].get("tls", {}).get("enabled", False)
    assert [p["targetPort"] for p in traffic["spec"]["ports"]] == ["http", "https"] if tls else ["http"]
    if tls:
        service = SCENARIOS[scenario].get("proxy", {}).get("service", {}).get("tlsPort", 443)
        assert traffic["spec"]["ports"][1]["port"] == service
    assert [p["targetPort"] for p in admin["spec"]["ports"]] == ["admin"]
    assert admin["spec"]["type"] == "ClusterIP"


def test_operator_finds_the_proxies_from_the_admin_service_only_when_allowed(
    chart_helm: Path, rendered: Manifests, tmp_path: Path
) -> None:
    """The rollout loop scrapes the admin Service's endpoints; without the EndpointSlice grant, no flag."""
    admin = rendered.named("Service", f"{RELEASE}-graylane-proxy-admin")
    (container,) = rendered.deployment("operator")["spec"]["template"]["spec"]["containers"]
    assert f"--proxy-service={admin['metadata']['name']}" in container["args"]
    off = Manifests(tuple(render(chart_helm, tmp_path, {"operator": {"discoverProxies": False}})))
    (container,) = off.deployment("operator")["spec"]["template"]["spec"]["containers"]
    assert not [a for a in container["args"] if a.startswith("--proxy-service")]


def test_operator_replicas_are_peered_with_unique_priorities(rendered: Manifests, scenario: str) -> None:
    watch = SCENARIOS[scenario].get("watch", {})
    pod = rendered.deployment("operator")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert "--peering=graylane" in args and "--priority-from-pod-ip" in args
    assert "--standalone" not in args
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert env == {"POD_ID": "metadata.name", "POD_IP": "status.podIP"}
    peerings = rendered.of_kind("KopfPeering", "ClusterKopfPeering")
    if watch.get("allNamespaces"):
        assert "--all-namespaces" in args
        assert [(p["kind"], p["metadata"]["name"]) for p in peerings] == [("ClusterKopfPeering", "graylane")]
    else:
        watched = watch.get("namespaces") or [rendered.namespace]
        assert [a for a in args if a.startswith("--namespace=")] == [f"--namespace={ns}" for ns in watched]
        assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(watched)
    assert f"--config-namespace={rendered.namespace}" in args


def test_network_policy_keeps_the_admin_port_for_the_operator_and_monitoring(
    rendered: Manifests, scenario: str
) -> None:
    policies = rendered.of_kind("NetworkPolicy")
    if not SCENARIOS[scenario].get("proxy", {}).get("networkPolicy", {}).get("enabled"):
        assert policies == []
        return
    (policy,) = policies
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "proxy"
    traffic, admin = policy["spec"]["ingress"]
    names = ["http", "https"] if SCENARIOS[scenario].get("tls", {}).get("enabled") else ["http"]
    assert traffic["ports"] == [{"port": n, "protocol": "TCP"} for n in names] and "from" not in traffic
    assert admin["ports"] == [{"port": "admin", "protocol": "TCP"}]
    peers = admin["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    monitoring = SCENARIOS[scenario]["proxy"]["networkPolicy"].get("adminFrom")
    assert peers[1:] == (monitoring or [])


def test_disruption_budgets_exist_only_when_they_can_hold(rendered: Manifests, scenario: str) -> None:
    names = {p["metadata"]["name"] for p in rendered.of_kind("PodDisruptionBudget")}
    single = scenario == "single-replicas"
    assert (f"{RELEASE}-graylane-proxy" in names) is not single
    assert (f"{RELEASE}-graylane-operator" in names) is not single


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"watch": {"allNamespaces": True, "namespaces": ["a"]}}, "cannot be combined"),
        (
            {"proxy": {"drainTimeoutSeconds": 36}},
            "must exceed proxy.drainDelaySeconds + proxy.drainTimeoutSeconds",
        ),
        ({"proxy": {"workers": 0}}, "/proxy/workers"),
        ({"proxy": {"trustedProxies": ["not-a-cidr"]}}, "/proxy/trustedProxies/0"),
        ({"proxy": {"service": {"type": "ExternalName"}}}, "/proxy/service/type"),
        ({"proxy": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}, "minReplicas"),
        ({"watch": {"namespaces": ["Bad_Name"]}}, "/watch/namespaces/0"),
        ({"operator": {"replicaz": 2}}, "replicaz"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"proxy": {"tls": {"defaultSecret": "fallback"}}}, "proxy.tls.defaultSecret needs tls.enabled"),
        ({"tls": {"enabled": True}, "proxy": {"tls": {"port": 443}}}, "/proxy/tls/port"),
    ],
)
def test_bad_values_are_refused_with_the_value_named(
    chart_helm: Path, tmp_path: Path, values: dict[str, object], message: str
) -> None:
    with pytest.raises(HelmError, match=re.escape(message)):
        render(chart_helm, tmp_path, values)


def _undocumented_keys(text: str) -> list[str]:
    """Keys in values.yaml with no comment line directly above them or above one of their ancestors
    (section parents like `proxy:` need none when each of their children has one)."""
    lines = text.splitlines()
    missing = []
    documented_ancestors: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z0-9_]+):(.*)$", line)
        if not match:
            continue
        indent = len(match.group(1))
        while documented_ancestors and documented_ancestors[-1][0] >= indent:
            documented_ancestors.pop()
        documented = i > 0 and lines[i - 1].strip().startswith("#")
        covered = documented or any(d for _, d in documented_ancestors)
        is_parent = (
            match.group(3).strip() == ""
            and i + 1 < len(lines)
            and lines[i + 1].startswith(match.group(1) + "  ")
        )
        if not covered and not is_parent:
            missing.append(f"line {i + 1}: {match.group(2)}")
        documented_ancestors.append((indent, documented))
    return missing


def test_values_yaml_documents_every_value() -> None:
    text = (CHART_DIR / "values.yaml").read_text()
    assert _undocumented_keys(text) == []
    assert _undocumented_keys("a:\n  b: 1\n") == ["line 2: b"]  # the check itself can fail
    assert _undocumented_keys("# doc\na:\n  b: 1\n") == []


def test_values_schema_accepts_the_defaults() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((CHART_DIR / "values.yaml").read_text()), schema)


def test_notes_show_the_next_two_commands(chart_helm: Path, tmp_path: Path) -> None:
    out = run_helm(
        chart_helm, "install", RELEASE, str(CHART_DIR), "-n", "team-x", "--dry-run=client", "--skip-crds"
    )
    notes = out.split("NOTES:", 1)[1]
    commands = [line.strip() for line in notes.splitlines() if line.strip().startswith("kubectl ")]
    assert commands == [
        "kubectl apply -n team-x -f examples/checkout/",
        "kubectl get canaryroutes -n team-x -w",
    ]


def test_the_packaged_chart_carries_crds_schema_and_readme(chart_helm: Path, tmp_path: Path) -> None:
    run_helm(chart_helm, "package", str(CHART_DIR), "-d", str(tmp_path))
    (archive,) = tmp_path.glob("graylane-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    crds = {p.name for p in (CHART_DIR / "crds").iterdir()}
    assert {f"graylane/crds/{name}" for name in crds} <= names
    assert {"graylane/values.schema.json", "graylane/README.md", "graylane/templates/NOTES.txt"} <= names
