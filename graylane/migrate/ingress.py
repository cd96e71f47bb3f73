"""Read ``networking.k8s.io/v1`` Ingress and v1 Service objects (plain dicts) into the frozen model.

Problems come back as findings with the field path inside the object (``spec.rules[0].http.paths[1].
pathType``); an Ingress with an error is returned as ``None`` and takes no further part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from graylane.config.fields import FieldChecker, join
from graylane.migrate.model import Backend, Finding, Ingress, IngressPath, IngressTLS, ServicePorts

INGRESS_API = "networking.k8s.io/v1"
PATH_TYPES = ("Prefix", "Exact", "ImplementationSpecific")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def is_ingress(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Ingress"


def is_service(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Service" and obj.get("apiVersion") == "v1"


def object_label(obj: Mapping[str, Any], default_namespace: str) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    return f"{meta.get('namespace') or default_namespace}/{meta.get('name') or '?'}"


def parse_ingress(
    obj: Mapping[str, Any], *, source: str, default_namespace: str
) -> tuple[Ingress | None, list[Finding]]:
    subject = f"Ingress {object_label(obj, default_namespace)}"
    if obj.get("apiVersion") != INGRESS_API:
        message = (
            f"apiVersion {obj.get('apiVersion')!r}: only {INGRESS_API} Ingresses are read "
            "(re-export them from a cluster of Kubernetes 1.19 or newer with kubectl get -o yaml)"
        )
        return None, [Finding("error", subject, "apiVersion", message)]
    c = FieldChecker()
    meta = _mapping(c, obj.get("metadata"), "metadata")
    spec = _mapping(c, obj.get("spec"), "spec")
    name = c.string(meta.get("name"), "metadata.name", max_len=253)
    annotations = _annotations(c, meta.get("annotations"))
    paths = tuple(_paths(c, spec.get("rules", [])))
    tls = tuple(_tls(c, spec.get("tls", [])))
    klass = spec.get("ingressClassName") or annotations.get(CLASS_ANNOTATION)
    if c.errors or name is None:
        return None, [Finding("error", subject, e.path, e.message) for e in c.errors]
    ingress = Ingress(
        namespace=str(meta.get("namespace") or default_namespace),
        name=name,
        source=source,
        annotations=annotations,
        ingress_class=str(klass) if klass else None,
        paths=paths,
        tls=tls,
        default_backend=spec.get("defaultBackend") is not None,
    )
    return ingress, []


def parse_service(obj: Mapping[str, Any], *, default_namespace: str) -> ServicePorts | None:
    """The named ports of a Service; ``None`` for anything unreadable (it only helps resolve names)."""
    meta, spec = obj.get("metadata"), obj.get("spec")
    if (
        not isinstance(meta, Mapping)
        or not isinstance(spec, Mapping)
        or not isinstance(meta.get("name"), str)
    ):
        return None
    ports = {
        p["name"]: p["port"]
        for p in spec.get("ports") or []
        if isinstance(p, Mapping) and isinstance(p.get("name"), str) and type(p.get("port")) is int
    }
    return ServicePorts(str(meta.get("namespace") or default_namespace), meta["name"], ports)


def _mapping(c: FieldChecker, value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        c.error(path, "must be a mapping")
        return {}
    return value


def _annotations(c: FieldChecker, value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in _mapping(c, value, "metadata.annotations").items():
        if isinstance(item, str):
            out[str(key)] = item
        else:  # the API server only stores strings; a YAML `true` or `10` must be quoted
            c.error(f"metadata.annotations[{key}]", "must be a string (quote it in YAML)")
    return out


def _items(c: FieldChecker, value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path[i], mapping)`` for each item of the list at ``path``."""
    for i, item in enumerate(c.array(value, path)):
        yield join(path, i), _mapping(c, item, join(path, i))


def _paths(c: FieldChecker, rules: Any) -> list[IngressPath]:
    out: list[IngressPath] = []
    for where, rule in _items(c, rules, "spec.rules"):
        host = rule.get("host", "")
        if not isinstance(host, str):
            c.error(join(where, "host"), "must be a string")
            continue
        http = _mapping(c, rule.get("http"), join(where, "http"))
        for item_where, item in _items(c, http.get("paths", []), join(where, "http.paths")):
            parsed = _path(c, host, item, item_where)
            if parsed is not None:
                out.append(parsed)
    return out


def _path(c: FieldChecker, host: str, item: Mapping[str, Any], where: str) -> IngressPath | None:
    path = c.string(item.get("path", "/"), join(where, "path"), max_len=4096)
    path_type = item.get("pathType")
    if path_type not in PATH_TYPES:
        c.error(join(where, "pathType"), f"must be one of {', '.join(PATH_TYPES)}")
        return None
    backend = _mapping(c, item.get("backend"), join(where, "backend"))
    service = backend.get("service")
    if path is None:
        return None
    if service is None:
        return IngressPath(host, path, path_type, None, where)
    parsed = _backend(c, _mapping(c, service, join(where, "backend.service")), join(where, "backend.service"))
    return IngressPath(host, path, path_type, parsed, where) if parsed else None


def _backend(c: FieldChecker, service: Mapping[str, Any], where: str) -> Backend | None:
    name = c.string(service.get("name"), join(where, "name"), max_len=63)
    port = _mapping(c, service.get("port"), join(where, "port"))
    if "number" in port:
        number = c.integer(port["number"], join(where, "port.number"), lo=1, hi=65535)
        return Backend(name, number) if name and number else None
    if "name" in port:
        port_name = c.string(port["name"], join(where, "port.name"), max_len=15)
        return Backend(name, port_name) if name and port_name else None
    c.error(join(where, "port"), "needs number or name")
    return None


def _tls(c: FieldChecker, value: Any) -> list[IngressTLS]:
    out: list[IngressTLS] = []
    for where, item in _items(c, value, "spec.tls"):
        hosts: Sequence[str] = c.strings(item.get("hosts", []), join(where, "hosts"), unique=False)
        secret = item.get("secretName")
        out.append(IngressTLS(tuple(hosts), secret if isinstance(secret, str) and secret else None, where))
    return out
