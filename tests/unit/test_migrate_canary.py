"""The canary annotations -> CanaryRoute rules and weight (graylane.migrate.canary), table-driven.

Expected values follow ingress-nginx's documentation (docs/user-guide/nginx-configuration/annotations.md,
section Canary) and its balancer (rootfs/etc/nginx/lua/balancer.lua, route_to_alternative_balancer).
The behaviour of the results on a real proxy is tests/proxy/test_import_behaviour.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from ingress_manifests import pair

from graylane.migrate.model import ImportOptions, ImportResult
from graylane.migrate.plan import import_ingresses


def run(annotations: dict[str, str], **options: Any) -> ImportResult:
    return import_ingresses([("test", o) for o in pair(annotations)], ImportOptions(**options))


def spec_of(result: ImportResult) -> dict[str, Any]:
    assert result.ok, [str(f) for f in result.findings if f.severity == "error"]
    (route,) = result.routes
    return dict(route.route["spec"])


def header(name: str, op: str, value: str, to: str, rule: str) -> dict[str, Any]:
    return {"name": rule, "match": {"headers": [{"name": name, op: value}]}, "to": to}


def cookie(name: str, value: str, to: str) -> dict[str, Any]:
    return {"name": f"cookie-{value}", "match": {"cookies": [{"name": name, "exact": value}]}, "to": to}


ALWAYS = header("X-Canary", "exact", "always", "canary", "header-always")
NEVER = header("X-Canary", "exact", "never", "stable", "header-never")

RULES = [
    # docs: canary-by-header alone -- "always" -> canary, "never" -> stable, other values fall through
    ({"canary-by-header": "X-Canary"}, [ALWAYS, NEVER]),
    # docs: canary-by-header-value -- only that exact value routes to the canary (never has no meaning)
    ({"canary-by-header": "X-Canary", "canary-by-header-value": "v2"},
     [header("X-Canary", "exact", "v2", "canary", "header-value")]),
    # docs: canary-by-header-pattern -- PCRE matched anywhere in the value -> RE2 full match of .*(?:P).*
    ({"canary-by-header": "X-Canary", "canary-by-header-pattern": "^beta-[0-9]+$"},
     [header("X-Canary", "regex", ".*(?:^beta-[0-9]+$).*", "canary", "header-pattern")]),
    # docs: "when canary-by-header-value is set this annotation [the pattern] will be ignored"
    ({"canary-by-header": "X-Canary", "canary-by-header-value": "v2", "canary-by-header-pattern": ".*"},
     [header("X-Canary", "exact", "v2", "canary", "header-value")]),
    # docs: canary-by-cookie -- "always" -> canary, "never" -> stable
    ({"canary-by-cookie": "use_canary"}, [cookie("use_canary", "always", "canary"),
                                          cookie("use_canary", "never", "stable")]),
    # docs: precedence canary-by-header -> canary-by-cookie -> canary-weight: header rules come first
    ({"canary-by-cookie": "c", "canary-by-header": "X-Canary", "canary-weight": "10"},
     [ALWAYS, NEVER, cookie("c", "always", "canary"), cookie("c", "never", "stable")]),
    # balancer.lua reads $http_<name with - as _>: nginx treats X_Canary as the X-Canary header
    ({"canary-by-header": "X_Canary"}, [ALWAYS, NEVER]),
    # only a weight: no rules at all
    ({"canary-weight": "30"}, None),
    # empty values count as unset (balancer: #headerValue > 0)
    ({"canary-by-header": "X-Canary", "canary-by-header-value": ""}, [ALWAYS, NEVER]),
]  # fmt: skip


@pytest.mark.parametrize(("annotations", "rules"), RULES)
def test_rules_follow_ingress_nginx_precedence(annotations: dict[str, str], rules: Any) -> None:
    spec = spec_of(run(annotations))
    assert spec.get("rules") == rules


WEIGHTS = [
    ({}, 0),  # no canary-weight: the canary gets no share of the remaining traffic
    ({"canary-weight": "0"}, 0),
    ({"canary-weight": "100"}, 100),
    ({"canary-weight": "37"}, 37),
    ({"canary-weight": "+5"}, 5),  # Go's strconv.Atoi takes a sign
    ({"canary-weight": "125", "canary-weight-total": "1000"}, 12.5),  # docs: total "can be increased"
    ({"canary-weight": "1", "canary-weight-total": "3000"}, 0.03),  # 0.0333...% rounds to two decimals
    ({"canary-weight": "2", "canary-weight-total": "3000"}, 0.07),  # 0.0666...% rounds half up
    ({"canary-weight": "1000", "canary-weight-total": "1000"}, 100),
    ({"canary-weight": "5", "canary-weight-total": "10"}, 5),  # balancer: totals not above 100 count as 100
]


@pytest.mark.parametrize(("annotations", "weight"), WEIGHTS)
def test_weight_is_the_percentage_ingress_nginx_applied(annotations: dict[str, str], weight: float) -> None:
    spec = spec_of(run(annotations))
    assert spec["weight"] == weight and type(spec["weight"]) is type(weight)
    assert "sticky" not in spec  # per-request random, as ingress-nginx


def test_sticky_option_gives_every_route_the_key() -> None:
    spec = spec_of(run({"canary-weight": "10"}, sticky="header:X-User-Id"))
    assert spec["sticky"] == {"keys": ["header:X-User-Id"]}
    (route,) = run({"canary-weight": "10"}, sticky="header:X-User-Id").routes
    assert any("sticky on header:X-User-Id" in line for line in route.explanation)
    (random,) = run({"canary-weight": "10"}).routes
    assert any("per-request random" in line for line in random.explanation)


@pytest.mark.parametrize("key", ["jwt:sub", "header:", "bogus", "cookie:"])
def test_sticky_option_is_checked(key: str) -> None:
    result = run({"canary-weight": "10"}, sticky=key)
    assert not result.ok and any(f.subject == "--sticky" for f in result.findings)


FINDINGS = [
    # (annotations, severity, annotation the finding names, words in its message)
    ({"canary-weight": "10.5"}, "error", "canary-weight", "not an integer"),
    ({"canary-weight": "ten"}, "error", "canary-weight", "would silently use 0"),
    ({"canary-weight": "-1"}, "error", "canary-weight", "between 0 and canary-weight-total (100)"),
    ({"canary-weight": "101"}, "error", "canary-weight", "between 0 and canary-weight-total (100)"),
    ({"canary-weight": "60", "canary-weight-total": "50"}, "error", "canary-weight", "between 0 and"),
    ({"canary-weight-total": "0"}, "error", "canary-weight-total", "at least 1"),
    ({"canary-weight-total": "50"}, "warning", "canary-weight-total", "uses 100"),
    ({"canary-weight": "1", "canary-weight-total": "300"}, "note", "canary-weight", "rounded to 0.33%"),
    ({"canary-by-header": "X Canary"}, "error", "canary-by-header", "not a valid header name"),
    ({"canary-by-cookie": "a;b"}, "error", "canary-by-cookie", "not a valid cookie name"),
    ({"canary-by-header": "X-C", "canary-by-header-pattern": "(?<!a)b"}, "error", "canary-by-header-pattern",
     "lookaround"),
    ({"canary-by-header-value": "v2"}, "warning", "canary-by-header-value", "no effect without canary-by"),
    ({"canary-by-header-pattern": "x"}, "warning", "canary-by-header-pattern", "no effect"),
    ({"canary-by-header": "X-C", "canary-by-header-value": "a", "canary-by-header-pattern": "b"}, "note",
     "canary-by-header-pattern", "ignored because canary-by-header-value is set"),
    ({"canary-by-header": "X_C"}, "note", "canary-by-header", "imported as 'X-C'"),
    ({"canary": "yes"}, "error", "canary", "must be \"true\" or \"false\""),
]  # fmt: skip


@pytest.mark.parametrize(("annotations", "severity", "name", "words"), FINDINGS)
def test_findings_name_the_annotation(
    annotations: dict[str, str], severity: str, name: str, words: str
) -> None:
    found = [f for f in run(annotations).findings if f.severity == severity]
    path = f"metadata.annotations[nginx.ingress.kubernetes.io/{name}]"
    assert any(f.path == path and words in f.message and "checkout-canary" in f.subject for f in found), found


def test_canary_annotations_without_canary_true_are_an_error() -> None:
    objects = pair({"canary-weight": "10"})
    del objects[1]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"]
    result = import_ingresses([("t", o) for o in objects], ImportOptions())
    assert not result.ok and 'without canary: "true"' in str(result.findings)


def test_canary_false_makes_a_main_ingress() -> None:
    objects = pair({})
    objects[1]["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/canary": "false"}
    result = import_ingresses([("t", o) for o in objects], ImportOptions())
    assert result.ok and result.routes == ()
    assert [f.message for f in result.findings] == ["no canary Ingress: not imported"] * 2


def test_another_annotation_prefix() -> None:
    objects = pair({})
    objects[1]["metadata"]["annotations"] = {"acme.io/canary": "true", "acme.io/canary-weight": "20"}
    result = import_ingresses([("t", o) for o in objects], ImportOptions(annotation_prefix="acme.io"))
    assert spec_of(result)["weight"] == 20
