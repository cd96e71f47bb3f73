"""``kubectl graylane`` without a cluster: arguments, the patches it sends, the status table, /explain."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from graylane.cli import kubectl as kubectl_cli
from graylane.cli import kubectl_views
from graylane.cli.kubectl_views import CommandError

ROLLOUT = {"steps": [{"weight": 1, "pause": "1m"}, {"weight": 10}], "analysis": {"minRequests": 50}}


def route(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"stable": "checkout-v1", "canary": "checkout-v2", "weight": 0, **(spec or {})},
        "status": status or {},
    }


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize(("text", "value"), [("0", 0), ("100", 100), ("12.5", 12.5), ("0.01", 0.01)])
def test_weights(text: str, value: float) -> None:
    assert kubectl_views.parse_weight(text) == value


@pytest.mark.parametrize("text", ["-1", "100.01", "1.234", "ten", "nan", "inf"])
def test_bad_weights(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        kubectl_views.parse_weight(text)


@pytest.mark.parametrize(
    ("text", "pair"), [("X-Canary=true", ("X-Canary", "true")), ("a:b=c", ("a:b", "c")), ("K:v", ("K", "v"))]
)
def test_headers(text: str, pair: tuple[str, str]) -> None:
    assert kubectl_views.parse_header(text) == pair


def test_bad_header_and_weight_exit_2_with_usage() -> None:
    for argv in (["explain", "r", "--header", "novalue"], ["set-weight", "r", "150"], ["status", "--bogus"]):
        with pytest.raises(SystemExit) as info:
            kubectl_cli.main(argv, environ={"KUBECTL": "/nonexistent"})
        assert info.value.code == 2


def test_missing_kubectl_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubectl_cli.main(["status"], environ={"PATH": "/nonexistent"}) == 1
    assert "kubectl not found" in capsys.readouterr().err


def test_kubectl_argv_carries_scope_and_globals() -> None:
    k = kubectl_cli.Kubectl("kubectl", namespace="shop", kubeconfig="/k", context="dev")
    expected = ["kubectl", "--kubeconfig", "/k", "--context", "dev", "get", "x", "-n", "shop"]
    assert k.argv("get", "x") == expected
    assert k.argv("get", "x", all_namespaces=True)[-3:] == ["get", "x", "--all-namespaces"]
    assert kubectl_cli.Kubectl("k", namespace=None, kubeconfig=None, context=None).argv("v") == ["k", "v"]


# ---------------------------------------------------------------- patches
@pytest.mark.parametrize(
    ("command", "obj", "weight", "body"),
    [
        ("set-weight", route(), 20, {"spec": {"weight": 20}}),
        ("promote", route(), None, {"spec": {"weight": 100}}),
        ("promote", route({"rollout": ROLLOUT}, {"phase": "Progressing"}), None, {"spec": {"weight": 100}}),
        ("abort", route({"rollout": ROLLOUT}), None, {"spec": {"rollout": {"abort": True}}}),
        ("pause", route({"rollout": ROLLOUT}), None, {"spec": {"rollout": {"paused": True}}}),
        (
            "resume",
            route({"rollout": ROLLOUT}, {"phase": "Paused", "rolloutSpecWeight": 0}),
            None,
            {"spec": {"rollout": {"paused": False, "abort": False}}},
        ),
        (  # spec.weight was changed by hand during the rollout: resume hands the weight back
            "resume",
            route({"rollout": ROLLOUT, "weight": 30}, {"phase": "Paused", "rolloutSpecWeight": 0}),
            None,
            {"spec": {"rollout": {"paused": False, "abort": False}, "weight": 0}},
        ),
    ],
)
def test_patches(command: str, obj: dict[str, Any], weight: float | None, body: dict[str, Any]) -> None:
    assert kubectl_views.patch_for(command, obj, weight=weight) == body


@pytest.mark.parametrize(
    ("command", "obj", "fragment"),
    [
        ("abort", route(), "has no spec.rollout"),
        ("pause", route(), "has no spec.rollout"),
        ("resume", route(), "has no spec.rollout"),
        ("promote", route({"rollout": ROLLOUT}, {"phase": "RolledBack"}), "resume checkout"),
        ("promote", route({"rollout": ROLLOUT}, {"phase": "Aborted"}), "resume checkout"),
        ("set-weight", route(), "needs a weight"),
    ],
)
def test_refused_patches(command: str, obj: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CommandError, match=fragment):
        kubectl_views.patch_for(command, obj)


def test_describe_patch() -> None:
    body = {"spec": {"rollout": {"paused": False, "abort": False}, "weight": 12.5}}
    assert kubectl_views.describe_patch(body) == (
        "patched spec.rollout.abort=false, spec.rollout.paused=false, spec.weight=12.5"
    )


# ---------------------------------------------------------------- the status table
def test_status_table_shows_both_tracks_figures_and_the_mirror() -> None:
    analysis = {
        "stable": {"errorRate": 0.2, "p99LatencyMs": 21.5},
        "canary": {"errorRate": 50.0, "p99LatencyMs": 812.25},
        "mirror": {"errorRate": 0.0, "p99LatencyMs": 30.0, "mismatchRate": 12.5},
    }
    items = [
        route(
            {"rollout": ROLLOUT},
            {"phase": "RolledBack", "canaryWeight": 0, "currentStep": 1, "lastAnalysis": analysis},
        ),
        {
            "metadata": {"name": "plain", "namespace": "web"},
            "spec": {"stable": "a", "canary": "b", "weight": 5},
        },
        {
            "metadata": {"name": "shadowed", "namespace": "web"},
            "spec": {"stable": "a", "canary": "b", "weight": 0, "mirror": {"percent": 2.5}},
        },
        route({"rollout": ROLLOUT}, {"phase": "Progressing", "canaryWeight": 0, "mirrorPercent": 100}),
    ]
    lines = kubectl_views.status_table(items, with_namespace=True).splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "NAME", "STABLE", "CANARY", "WEIGHT", "STEP", "PHASE",
        "STABLE", "ERR", "STABLE", "P99", "CANARY", "ERR", "CANARY", "P99", "MIRROR", "MISMATCH",
    ]  # fmt: skip
    assert lines[1].split() == [
        "shop", "checkout", "checkout-v1", "checkout-v2", "0%", "2/2", "RolledBack",
        "0.2%", "21.5ms", "50%", "812.2ms", "-", "12.5%",
    ]  # fmt: skip
    assert lines[2].split() == ["web", "plain", "a", "b", "5%", "-", "-", "-", "-", "-", "-", "-", "-"]
    assert lines[3].split()[-2:] == ["2.5%", "-"]  # spec.mirror, no analysis
    assert lines[4].split()[-2:] == ["100%", "-"]  # a rollout's shadow step


# ---------------------------------------------------------------- explain
def test_explain_request_defaults_to_the_routes_host_and_prefix() -> None:
    obj = route({"hosts": ["*.example.com", "checkout.example.com"], "pathPrefix": "/api"})
    body = kubectl_views.explain_request(obj, headers=[("X-Canary", "true")], jwt="t.o.k", ip="203.0.113.9")
    assert body == {
        "host": "checkout.example.com",
        "path": "/api",
        "method": "GET",
        "query": "",
        "headers": {"X-Canary": "true", "Authorization": "Bearer t.o.k"},
        "clientIP": "203.0.113.9",
    }
    assert kubectl_views.explain_request(obj, host="h", path="/p", method="post")["method"] == "POST"


def test_explain_summary() -> None:
    obj = route()
    answer = {"route": "shop/checkout", "track": "canary", "upstream": "checkout-v2", "reason": "rule:qa"}
    assert (
        kubectl_views.explain_summary(obj, answer) == "shop/checkout → canary (checkout-v2), reason rule:qa"
    )
    assert "not shop/checkout" in kubectl_views.explain_summary(obj, answer | {"route": "shop/other"})
    assert "no route matches" in kubectl_views.explain_summary(obj, {"route": None, "status": 404})


def test_post_json_refuses_non_http_urls() -> None:
    with pytest.raises(kubectl_cli.PluginError, match="http"):
        kubectl_cli.post_json("file:///etc/passwd", {})


def test_post_json_reports_unreachable_proxy() -> None:
    with pytest.raises(kubectl_cli.PluginError, match=r"127\.0\.0\.1:9"):
        kubectl_cli.post_json("http://127.0.0.1:9/explain", {}, timeout=2)
