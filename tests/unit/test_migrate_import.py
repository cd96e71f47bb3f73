"""graylane.migrate beyond the canary annotations: pairing, paths, hosts, names, TLS, findings per route and
--strict. The annotation catalogue: test_migrate_annotations.py; the malformed inputs: the corpus in
tests/bad_inputs/ingress-nginx/."""

from __future__ import annotations

from typing import Any

import pytest
from ingress_manifests import canary, ingress, pair

from graylane.compile.route import compile_route
from graylane.migrate import tls
from graylane.migrate.ingress import parse_ingress
from graylane.migrate.model import ImportedRoute, ImportOptions, ImportResult
from graylane.migrate.names import route_names, service_version, upstream_names
from graylane.migrate.plan import import_ingresses


def run(objects: list[dict[str, Any]], **options: Any) -> ImportResult:
    return import_ingresses([("test.yaml", o) for o in objects], ImportOptions(**options))


def only_route(result: ImportResult) -> ImportedRoute:
    assert result.ok, [str(f) for f in result.findings if f.severity == "error"]
    (route,) = result.routes
    return route


def messages(result: ImportResult, severity: str) -> list[str]:
    return [str(f) for f in result.findings if f.severity == severity]


def test_hosts_of_one_pair_share_a_route_and_paths_split_routes() -> None:
    paths = [
        {"path": p, "pathType": "Prefix", "backend": {"service": {"name": s, "port": {"number": 80}}}}
        for p, s in (("/api", "api"), ("/web", "web"))
    ]
    canary_paths = [
        {
            **p,
            "backend": {"service": {"name": p["backend"]["service"]["name"] + "-v2", "port": {"number": 80}}},
        }
        for p in paths
    ]
    main = ingress("shop", "x", paths=paths)
    main["spec"]["rules"].append({**main["spec"]["rules"][0], "host": "www.example.com"})
    can = canary("shop-canary", "x", {"canary-weight": "10"}, paths=canary_paths)
    can["spec"]["rules"].append({**can["spec"]["rules"][0], "host": "www.example.com"})
    result = run([main, can])
    assert result.ok
    got = {r.name: (r.route["spec"]["hosts"], r.route["spec"]["pathPrefix"]) for r in result.routes}
    assert got == {
        "shop-api": (["shop.example.com", "www.example.com"], "/api"),
        "shop-web": (["shop.example.com", "www.example.com"], "/web"),
    }


def test_rule_without_host_is_any_host_and_trailing_slash_is_dropped() -> None:
    route = only_route(run(pair({"canary-weight": "1"}, host=None, path="/api/")))
    assert route.route["spec"]["hosts"] == [] and route.route["spec"]["pathPrefix"] == "/api"


@pytest.mark.parametrize(
    ("path", "words"),
    [("/api", "it no longer takes '/apix'"), ("/api/", "it also takes '/api' itself"), ("/", "the same set")],
)
def test_implementation_specific_is_imported_by_segments_with_a_warning(path: str, words: str) -> None:
    result = run(pair({"canary-weight": "1"}, path=path, path_type="ImplementationSpecific"))
    route = only_route(result)
    assert route.route["spec"]["pathPrefix"] == (path.rstrip("/") or "/")
    assert any("pathType: ingress-nginx matched" in w and words in w for w in messages(result, "warning"))


def test_regex_paths_of_a_host() -> None:
    objects = pair({"canary-weight": "1"}, path="/api")
    objects[0]["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/use-regex": "true"}
    result = run(objects)
    assert only_route(result).route["spec"]["pathPrefix"] == "/api"
    assert any(
        "case-insensitive regex prefix (use-regex on Ingress shop/checkout)" in w
        for w in messages(result, "warning")
    )
    objects = pair({"canary-weight": "1"}, path="/api/v[0-9]+", path_type="ImplementationSpecific")
    objects.append(ingress("other", "other", path="/x", annotations={"rewrite-target": "/y"}))
    assert any(
        "is a regular expression here (rewrite-target on Ingress shop/other)" in e
        for e in messages(run(objects), "error")
    )


def test_named_port_is_read_from_the_service_in_the_input() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "checkout-v2", "namespace": "shop"},
        "spec": {"ports": [{"name": "http", "port": 8081, "targetPort": 9000}]},
    }
    objects = [ingress("checkout", "checkout-v1"), canary("checkout-canary", "checkout-v2", {}, port="http")]
    route = only_route(run([*objects, service]))
    assert route.upstreams[1]["spec"]["service"] == {"name": "checkout-v2", "port": 8081}
    missing = run(objects)
    assert any(
        "port.name: named port 'http': its Service is not in the input" in e
        for e in messages(missing, "error")
    )


def test_upstream_names_versions_and_route_names() -> None:
    assert service_version("shop", "checkout-v2", {}) == "v2"
    assert service_version("shop", "api-1.4.0", {}) == "1.4.0"
    assert service_version("shop", "checkout-canary", {}) == "checkout-canary"
    assert service_version("shop", "v2", {}) == "v2"
    assert (
        service_version("shop", "checkout-v2", {"checkout-v2": "green", "shop/checkout-v2": "blue"}) == "blue"
    )
    assert upstream_names([("a", "s", 80), ("a", "s", 81), ("a", "t", 80), ("b", "s", 80)]) == {
        ("a", "s", 80): "s-80",
        ("a", "s", 81): "s-81",
        ("a", "t", 80): "t",
        ("b", "s", 80): "s",
    }
    assert route_names([("a", "m", "root"), ("a", "n", "api"), ("a", "n", "api"), ("a", "n", "web")]) == [
        "m",
        "n-api",
        "n-api-2",
        "n-web",
    ]
    route = only_route(run(pair({}), versions={"checkout-v1": "stable-build"}))
    assert [u["spec"]["metadata"]["version"] for u in route.upstreams] == ["stable-build", "v2"]


def test_tls_sections_become_spec_tls() -> None:
    objects = pair({"canary-weight": "5"}, tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}])
    result = run(objects)
    route = only_route(result)
    assert route.route["spec"]["tls"] == {"secretName": "shop-tls", "redirectHTTP": True}
    assert not any("spec.tls" in w for w in messages(result, "warning"))


def test_tls_is_a_warning_where_spec_tls_is_not_supported() -> None:
    main, _ = (
        parse_ingress(o, source="t", default_namespace="d")[0]
        for o in pair({}, tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}])
    )
    assert main is not None
    spec, findings = tls.tls_mapping(
        [main], ["shop.example.com"], prefix="nginx.ingress.kubernetes.io", supported=False
    )
    assert spec is None
    assert [f.path for f in findings] == ["spec.tls[0]"]
    assert "TLS for shop.example.com with Secret shop-tls: not carried over" in findings[0].message


def test_tls_mapping_once_supported() -> None:
    main, _ = (
        parse_ingress(o, source="t", default_namespace="d")[0]
        for o in pair({}, tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}])
    )
    assert main is not None
    assert tls.tls_mapping(
        [main], ["shop.example.com"], prefix="nginx.ingress.kubernetes.io", supported=True
    ) == ({"secretName": "shop-tls", "redirectHTTP": True}, [])
    no_redirect = parse_ingress(
        ingress("m", "s", annotations={"ssl-redirect": "false"}, tls=[{"secretName": "x"}]),
        source="t",
        default_namespace="d",
    )[0]
    assert no_redirect is not None
    spec, _ = tls.tls_mapping([no_redirect], [], prefix="nginx.ingress.kubernetes.io", supported=True)
    assert spec == {"secretName": "x", "redirectHTTP": False}
    assert tls.tls_mapping([main], ["other.example.com"], prefix="nginx.ingress.kubernetes.io") == (None, [])


def test_force_ssl_redirect_without_tls_is_a_warning() -> None:
    objects = pair({})
    objects[0]["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}
    assert any(
        "force-ssl-redirect]: not carried over, Graylane does not redirect HTTP to HTTPS" in w
        for w in messages(run(objects), "warning")
    )


def test_paths_left_behind_are_notes_and_shadowed_paths_warnings() -> None:
    main = ingress(
        "checkout",
        "checkout-v1",
        paths=[
            {
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "checkout-v1", "port": {"number": 80}}},
            },
            {
                "path": "/static",
                "pathType": "Prefix",
                "backend": {"service": {"name": "cdn", "port": {"number": 80}}},
            },
        ],
    )
    other = ingress("admin", "admin", path="/admin")
    plain = ingress("blog", "blog", host="blog.example.com")
    result = run([main, canary("checkout-canary", "checkout-v2", {}, port=80), other, plain])
    route = only_route(result)
    notes = messages(result, "note")
    assert any(
        "shop/checkout: spec.rules[0].http.paths[1]: shop.example.com /static has no canary" in n
        for n in notes
    )
    assert any("shop/admin: no canary Ingress: not imported" in n for n in notes)
    shadowed = [w for w in messages(result, "warning") if "lies under pathPrefix /" in w]
    assert (
        len(shadowed) == 2 and any("/static" in w for w in shadowed) and any("/admin" in w for w in shadowed)
    )
    assert not any("blog" in w for w in shadowed)
    assert sum("lies under" in str(f) for f in route.findings) == 2


def test_strict_turns_warnings_into_errors() -> None:
    objects = pair({"canary-weight": "5"})
    objects[0]["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/rewrite-target": "/"}
    assert run(objects).ok
    strict = run(objects, strict=True)
    assert not strict.ok and strict.count("warning") == 0
    assert any("rewrite-target" in e for e in messages(strict, "error"))


def test_other_ingress_classes_are_skipped_with_a_note() -> None:
    objects = pair({"canary-weight": "5"}, ingressClassName="traefik")
    result = run(objects)
    assert result.routes == () and len(messages(result, "note")) == 2
    assert run(objects, ingress_class="traefik").routes != ()
    legacy = pair({"canary-weight": "5"}, ingressClassName=None)
    for obj in legacy:
        del obj["spec"]["ingressClassName"]
        obj["metadata"].setdefault("annotations", {})["kubernetes.io/ingress.class"] = "nginx"
    assert len(run(legacy).routes) == 1


def test_every_route_compiles_as_the_operator_compiles_it() -> None:
    objects = pair(
        {
            "canary-by-header": "X-Canary",
            "canary-by-cookie": "c",
            "canary-weight": "1",
            "canary-weight-total": "3000",
        }
    )
    route = only_route(run(objects, sticky="cookie:session"))
    doc = compile_route(route.route, {u["metadata"]["name"]: u for u in route.upstreams})
    assert doc["weight"] == 0.03 and doc["sticky"] == {"keys": ["cookie:session"]}
    assert [r["name"] for r in doc["rules"]] == [
        "header-always",
        "header-never",
        "cookie-always",
        "cookie-never",
    ]
