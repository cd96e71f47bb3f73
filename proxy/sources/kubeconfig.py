"""How the proxy reaches the Kubernetes API: a kubeconfig (``--kubeconfig``, ``$KUBECONFIG``) or the
in-cluster service account. Supports a CA (file or inline data), client certificates (file or data),
bearer tokens (inline, ``tokenFile``, or the service-account token, re-read on every request so rotated
tokens work)."""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from graylane.proxy.sources.pemload import load_chain

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(Exception):
    pass


@dataclass(frozen=True)
class ApiAccess:
    server: str  # https://host:port, no trailing slash
    ssl_context: ssl.SSLContext | bool  # False: plain http (tests) or insecure-skip-tls-verify
    token: str | None = None
    token_file: Path | None = None
    namespace: str | None = None  # the context's / pod's namespace

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file is not None:
            token = self.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}"} if token else {}


def load(kubeconfig: str | None = None) -> ApiAccess:
    """``kubeconfig`` path, else ``$KUBECONFIG`` (first entry), else the in-cluster service account."""
    path = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    if path:
        return from_kubeconfig(Path(path))
    if (SA_DIR / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    raise KubeConfigError("no kubeconfig (--kubeconfig, $KUBECONFIG) and not running in a cluster")


def in_cluster() -> ApiAccess:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    ctx = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
    ns_file = SA_DIR / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.exists() else None
    return ApiAccess(f"https://{host}:{port}", ctx, token_file=SA_DIR / "token", namespace=namespace)


def from_kubeconfig(path: Path) -> ApiAccess:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise KubeConfigError(f"{path}: not a kubeconfig")
    context = _named(doc, "contexts", doc.get("current-context"), "context")
    cluster = _named(doc, "clusters", context.get("cluster"), "cluster")
    user = _named(doc, "users", context.get("user"), "user") if context.get("user") else {}
    server = str(cluster.get("server", "")).rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"{path}: cluster server {server!r} is not an http(s) URL")
    base = path.parent
    token_file = Path(base, user["tokenFile"]) if user.get("tokenFile") else None
    return ApiAccess(
        server=server,
        ssl_context=_ssl_context(cluster, user, base) if server.startswith("https://") else False,
        token=user.get("token"),
        token_file=token_file,
        namespace=context.get("namespace"),
    )


def _named(doc: dict[str, Any], section: str, name: Any, key: str) -> dict[str, Any]:
    for item in doc.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get(key), dict):
            return item[key]  # type: ignore[no-any-return]
    raise KubeConfigError(f"kubeconfig: no {section} entry named {name!r}")


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext | bool:
    if cluster.get("insecure-skip-tls-verify"):
        return False
    ctx = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        ctx.load_verify_locations(cafile=str(Path(base, cluster["certificate-authority"])))
    cert = _pem(user, "client-certificate", base)
    key = _pem(user, "client-key", base)
    if cert and key:
        load_chain(ctx, cert, key)
    return ctx


def _pem(user: dict[str, Any], field: str, base: Path) -> bytes | None:
    if user.get(f"{field}-data"):
        return base64.b64decode(user[f"{field}-data"])
    if user.get(field):
        return Path(base, user[field]).read_bytes()
    return None
