"""Every pod the chart creates meets Pod Security "restricted" (and has a read-only root filesystem)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from chart_render import Manifests
from pss_restricted import violations


def test_every_rendered_pod_meets_restricted(rendered: Manifests) -> None:
    pods = list(rendered.pod_specs())
    assert len(pods) == 2  # operator and proxy
    for name, spec in pods:
        assert violations(spec) == [], name
        assert spec.get("automountServiceAccountToken") is True  # they talk to the API with their own SA
        assert not any("hostPath" in v for v in spec.get("volumes", []))


def test_the_gateway_proxy_template_meets_restricted(rendered: Manifests) -> None:
    """The pod template the operator copies into each Gateway's Deployment (gatewayAPI.enabled)."""
    for cm in rendered.of_kind("ConfigMap"):
        if "pod-template.json" in cm.get("data", {}):
            spec = json.loads(cm["data"]["pod-template.json"])["spec"]
            assert violations(spec) == []
            (container,) = spec["containers"]
            assert not {"--kube", "--listen", "--namespace"} & {a.split("=")[0] for a in container["args"]}, (
                "where a Gateway's proxy listens and what it reads is the operator's to add"
            )


GOOD_POD: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "c",
            "image": "i",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}
C = ("containers", 0, "securityContext")


def _set(pod: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(pod)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("hostNetwork",), True, "spec.hostNetwork"),
        (("hostPID",), True, "spec.hostPID"),
        (("hostIPC",), True, "spec.hostIPC"),
        (("volumes",), [{"name": "h", "hostPath": {"path": "/"}}], "spec.volumes[0].hostPath"),
        (("volumes",), [{"name": "n", "nfs": {"server": "x", "path": "/"}}], "spec.volumes[0].nfs"),
        (("securityContext", "runAsNonRoot"), _DELETE, "runAsNonRoot must be true"),
        (("securityContext", "runAsUser"), 0, "spec.securityContext.runAsUser must not be 0"),
        (("securityContext", "seccompProfile"), {"type": "Unconfined"}, "Unconfined"),
        (("securityContext", "seccompProfile"), _DELETE, "seccompProfile.type must be RuntimeDefault"),
        (("securityContext", "sysctls"), [{"name": "kernel.msgmax", "value": "1"}], "sysctls[0]"),
        (("securityContext", "seLinuxOptions"), {"user": "root"}, "seLinuxOptions.user"),
        ((*C, "allowPrivilegeEscalation"), True, "allowPrivilegeEscalation must be false"),
        ((*C, "allowPrivilegeEscalation"), _DELETE, "allowPrivilegeEscalation must be false"),
        ((*C, "privileged"), True, "privileged must be unset or false"),
        ((*C, "capabilities"), {"drop": ["NET_RAW"]}, "capabilities.drop must contain ALL"),
        ((*C, "capabilities"), {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "'SYS_ADMIN' not allowed"),
        ((*C, "runAsNonRoot"), False, "runAsNonRoot must be true"),
        ((*C, "runAsUser"), 0, "containers[0].securityContext.runAsUser must not be 0"),
        ((*C, "procMount"), "Unmasked", "procMount"),
        ((*C, "appArmorProfile"), {"type": "Unconfined"}, "appArmorProfile"),
        ((*C, "readOnlyRootFilesystem"), False, "readOnlyRootFilesystem must be true"),
        (("containers", 0, "ports"), [{"containerPort": 80, "hostPort": 80}], "hostPort"),
        (("initContainers",), [{"name": "init", "image": "i"}], "spec.initContainers[0]"),
    ],
)
def test_the_checker_catches_each_restricted_violation(
    path: tuple[Any, ...], value: Any, expected: str
) -> None:
    assert violations(GOOD_POD) == []
    found = violations(_set(GOOD_POD, path, value))
    assert any(expected in v for v in found), found


def test_net_bind_service_is_the_one_capability_restricted_allows() -> None:
    pod = _set(GOOD_POD, (*C, "capabilities"), {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    assert violations(pod) == []
