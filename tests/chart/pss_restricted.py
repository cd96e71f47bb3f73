"""A static checker for the Pod Security Standards "restricted" profile (which includes "baseline").

Follows kubernetes.io/docs/concepts/security/pod-security-standards/ control by control, plus one rule of our
own that PSS does not require: every container has a read-only root filesystem. `violations(pod_spec)` returns
one message per broken control, naming the field path; an empty list means the pod would be admitted under
`pod-security.kubernetes.io/enforce: restricted` (the cluster test proves the same with the real admission).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]

# Restricted: only these volume types.
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# Baseline: the sysctls that are safe (everything else is forbidden).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_APPARMOR = frozenset({"RuntimeDefault", "Localhost"})


def _containers(spec: Obj) -> Iterator[tuple[str, Obj]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(field) or []):
            yield f"spec.{field}[{i}]", c


def _host_namespaces(spec: Obj) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield f"spec.{field} must be unset or false"
    if (spec.get("securityContext") or {}).get("windowsOptions", {}).get("hostProcess"):
        yield "spec.securityContext.windowsOptions.hostProcess must not be true"


def _volumes(spec: Obj) -> Iterator[str]:
    for i, vol in enumerate(spec.get("volumes") or []):
        kinds = set(vol) - {"name"}
        for kind in sorted(kinds - ALLOWED_VOLUME_TYPES):
            yield f"spec.volumes[{i}].{kind}: volume type not allowed (restricted)"


def _pod_level(spec: Obj) -> Iterator[str]:
    psc = spec.get("securityContext") or {}
    for j, sysctl in enumerate(psc.get("sysctls") or []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"spec.securityContext.sysctls[{j}].name: {sysctl.get('name')!r} is not a safe sysctl"
    yield from _selinux("spec.securityContext", psc)
    if psc.get("runAsUser") == 0:
        yield "spec.securityContext.runAsUser must not be 0"
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield "spec.securityContext.seccompProfile.type must not be Unconfined"
    apparmor = (psc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in ALLOWED_APPARMOR:
        yield f"spec.securityContext.appArmorProfile.type: {apparmor!r} not allowed"


def _selinux(path: str, sc: Obj) -> Iterator[str]:
    opts = sc.get("seLinuxOptions") or {}
    if opts.get("type", "") not in ALLOWED_SELINUX_TYPES:
        yield f"{path}.seLinuxOptions.type: {opts['type']!r} not allowed"
    for field in ("user", "role"):
        if opts.get(field):
            yield f"{path}.seLinuxOptions.{field} must be unset"


def _container(path: str, c: Obj, psc: Obj) -> Iterator[str]:
    sc = c.get("securityContext") or {}
    sp = f"{path}.securityContext"
    if sc.get("privileged"):
        yield f"{sp}.privileged must be unset or false"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield f"{sp}.allowPrivilegeEscalation must be false"
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        yield f"{sp}.capabilities.drop must contain ALL"
    for cap in caps.get("add") or []:
        if cap != "NET_BIND_SERVICE":
            yield f"{sp}.capabilities.add: {cap!r} not allowed (only NET_BIND_SERVICE)"
    non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    if non_root is not True:
        yield f"{sp}.runAsNonRoot must be true (here or in spec.securityContext)"
    if sc.get("runAsUser") == 0:
        yield f"{sp}.runAsUser must not be 0"
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in ALLOWED_SECCOMP:
        yield f"{sp}.seccompProfile.type must be RuntimeDefault or Localhost (here or at pod level)"
    yield from _container_profiles(path, c)


def _container_profiles(path: str, c: Obj) -> Iterator[str]:
    sc = c.get("securityContext") or {}
    sp = f"{path}.securityContext"
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in ALLOWED_APPARMOR:
        yield f"{sp}.appArmorProfile.type: {apparmor!r} not allowed"
    if sc.get("procMount", "Default") != "Default":
        yield f"{sp}.procMount must be Default"
    yield from _selinux(sp, sc)
    for j, port in enumerate(c.get("ports") or []):
        if port.get("hostPort"):
            yield f"{path}.ports[{j}].hostPort must be unset or 0"
    if sc.get("readOnlyRootFilesystem") is not True:  # Graylane's own rule, stricter than PSS
        yield f"{sp}.readOnlyRootFilesystem must be true"


def violations(spec: Obj) -> list[str]:
    """Every "restricted" control the pod spec breaks, as field-path messages (empty: admitted)."""
    psc = spec.get("securityContext") or {}
    found = [*_host_namespaces(spec), *_volumes(spec), *_pod_level(spec)]
    for path, c in _containers(spec):
        found.extend(_container(path, c, psc))
    return found
