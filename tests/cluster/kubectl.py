"""A small helper that runs the real kubectl against one kubeconfig (used by the pytest fixtures)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any


class KubectlError(AssertionError):
    """kubectl exited non-zero; the message holds the command, exit code and stderr."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"kubectl exited {result.returncode}: {' '.join(map(str, result.args))}\n{result.stderr.strip()}"
        )


class Kubectl:
    """``kubectl(*args)`` runs ``<binary> --kubeconfig <kubeconfig> *args``; returns the CompletedProcess."""

    def __init__(self, binary: Path, kubeconfig: Path, *, timeout: float = 120.0) -> None:
        self.binary = Path(binary)
        self.kubeconfig = Path(kubeconfig)
        self.timeout = timeout

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        """Run with ``-o json`` and return the parsed output (raises KubectlError on failure)."""
        return json.loads(self(*args, "-o", "json", input=input).stdout)

    def set_weight(self, route: str, namespace: str, weight: float) -> subprocess.CompletedProcess[str]:
        """``kubectl patch canaryroute ROUTE --type=merge -p '{"spec":{"weight":W}}'`` — what users run."""
        patch = json.dumps({"spec": {"weight": weight}})
        return self("patch", "canaryroute", route, "-n", namespace, "--type=merge", "-p", patch)

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]], *extra: str) -> Any:
        """``kubectl apply -f -`` of one object or a list of objects; returns the applied object(s)."""
        items = manifest if isinstance(manifest, list) else [manifest]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        return self.json("apply", "-f", "-", *extra, input=body)

    def cluster_info(self) -> tuple[str, dict[str, Any]]:
        """The server URL and the cluster entry (CA, TLS settings) of the current context."""
        view = self.json("config", "view", "--raw", "--minify", "--flatten")
        cluster = view["clusters"][0]["cluster"]
        return cluster["server"], cluster

    def with_token(self, token: str, directory: Path | None = None) -> Kubectl:
        """A Kubectl for the same cluster that authenticates with ``token`` (e.g. a ServiceAccount's)."""
        server, cluster = self.cluster_info()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": cluster | {"server": server}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
        directory = directory or Path(tempfile.mkdtemp(prefix="graylane-token-"))
        path = directory / "token.kubeconfig"
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps(config))
        return Kubectl(self.binary, path, timeout=self.timeout)
