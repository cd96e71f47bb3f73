"""CanaryRoute + the Upstreams it names or selects -> the route document of docs/route-config.md.

Pure: the operator and ``graylane render`` both call :func:`compile_route` with plain dicts (the objects as
the API server returns them). The result is sealed and has already passed
:func:`graylane.config.document.load_route_document` -- whatever this module returns, the proxy accepts.
Problems raise :class:`CompileError`, whose ``errors`` carry paths in the *resource*
(``spec.rules[2].match.headers[0].regex``, ``Upstream checkout-v2: spec.url``), and whose ``reason`` is the
Ready condition's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graylane.compile.names import mirrored_secret_name
from graylane.compile.selectors import selector_matches
from graylane.config.document import ConfigError, FieldError, canonical_json, load_route_document, seal
from graylane.config.mirrorblock import DEFAULT_MIRROR_BODY
from graylane.config.tlsblock import is_sni_name
from graylane.config.upstreamblock import K8S_NAME

SCHEMA_VERSION = 1
ROUTE_SPEC_KEYS = frozenset(
    {"hosts", "pathPrefix", "stable", "canary", "rules", "versionRouting", "weight", "sticky", "jwt"}
    | {"requestHeaders", "rollout", "mirror", "tls"}
)
UPSTREAM_SPEC_KEYS = frozenset({"service", "url", "metadata", "timeoutSeconds", "maxConnections"})
INVALID = "Invalid"
UPSTREAM_NOT_FOUND = "UpstreamNotFound"

# Where a document path comes from: the first key decides the resource path prefix.
_SPEC_KEYS: tuple[str, ...] = ("hosts", "pathPrefix", "rules", "weight", "sticky", "jwt", "requestHeaders")
_SPEC_KEYS += ("stable", "canary", "mirror", "tls")
TLS_KEYS = frozenset({"secretName", "redirectHTTP"})


class CompileError(ValueError):
    """Cannot compile: ``reason`` is ``Invalid`` or ``UpstreamNotFound``; ``errors`` name paths."""

    def __init__(self, reason: str, errors: Sequence[FieldError]) -> None:
        self.reason = reason
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors[:5]) or reason)

    @property
    def message(self) -> str:
        """One line for a status condition: the first problems with their field paths."""
        more = f" (+{len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        return "; ".join(str(e) for e in self.errors[:3]) + more


def compile_route(
    route: Mapping[str, Any],
    upstreams: Mapping[str, Mapping[str, Any]],
    *,
    weight: float | None = None,
    mirror: float | None = None,
) -> dict[str, Any]:
    """Compile ``route`` against ``upstreams`` (the Upstream objects of its namespace, keyed by name).

    ``weight`` is the canary weight to apply now (the rollout decides it); ``None`` means ``spec.weight``.
    ``mirror`` is the mirror percent a rollout's shadow step applies now; ``None`` means ``spec.mirror`` as
    written (no ``mirror`` key at all without one, so documents of routes that do not mirror are unchanged).
    Returns the sealed document (a dict); serialise it with :func:`graylane.config.document.canonical_json`.
    """
    return compile_document(route, upstreams, weight=weight, mirror=mirror)[0]


def compile_document(
    route: Mapping[str, Any],
    upstreams: Mapping[str, Mapping[str, Any]],
    *,
    weight: float | None = None,
    mirror: float | None = None,
) -> tuple[dict[str, Any], str]:
    """:func:`compile_route`, and the document's canonical JSON text (validated as the proxy reads it)."""
    meta = _mapping(route.get("metadata"))
    spec = _mapping(route.get("spec"))
    namespace = str(meta.get("namespace") or "default")
    _check_references(spec, upstreams, namespace)
    document = _document(meta, spec, upstreams, namespace=namespace, weight=weight)
    mirrored = _mirror(spec.get("mirror"), mirror)
    if mirrored is not None:
        document["mirror"] = mirrored
    if "tls" in spec:
        document["tls"] = _tls(spec["tls"], namespace, str(meta.get("name") or ""), document["hosts"])
    sealed = seal(document)
    try:
        text = canonical_json(sealed)
        load_route_document(text)  # the text the proxy reads (its checksum proven on the bytes)
    except (ConfigError, TypeError, ValueError) as exc:
        errors = exc.errors if isinstance(exc, ConfigError) else [FieldError("spec", str(exc))]
        mapped = [_to_resource_path(e, upstreams) for e in errors]
        if any(e.path.startswith("Upstream ") for e in mapped):  # drop the echoes of a rejected Upstream
            mapped = [e for e in mapped if "names no upstream" not in e.message]
        raise CompileError(INVALID, mapped) from None
    return sealed, text


def _check_references(spec: Mapping[str, Any], upstreams: Mapping[str, Any], namespace: str) -> None:
    unknown = sorted(k for k in spec if k not in ROUTE_SPEC_KEYS)
    if unknown:
        raise CompileError(INVALID, [FieldError(f"spec.{k}", "unknown field") for k in unknown])
    missing = [
        FieldError(f"spec.{role}", f"Upstream {ref!r} not found in namespace {namespace!r}")
        for role, ref in (("stable", spec.get("stable")), ("canary", spec.get("canary")))
        if isinstance(ref, str) and ref not in upstreams
    ]
    if missing:
        raise CompileError(UPSTREAM_NOT_FOUND, missing)


def _document(
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    upstreams: Mapping[str, Mapping[str, Any]],
    *,
    namespace: str,
    weight: float | None,
) -> dict[str, Any]:
    name = str(meta.get("name") or "")
    stable, canary = spec.get("stable"), spec.get("canary")
    candidates = _candidates(spec.get("versionRouting"), upstreams)
    used = [n for n in (stable, canary, *candidates) if isinstance(n, str)]
    uid, generation = str(meta.get("uid") or ""), meta.get("generation", 0)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "route": {"namespace": namespace, "name": name, "uid": uid, "generation": generation},
        "hosts": _hosts(spec.get("hosts", [])),
        "pathPrefix": spec.get("pathPrefix", "/"),
        "stable": stable,
        "canary": canary,
        "upstreams": {n: _upstream(upstreams[n], namespace) for n in dict.fromkeys(used)},
        "rules": spec.get("rules", []),
        "versionRouting": _version_routing(spec.get("versionRouting"), candidates),
        "weight": _weight(spec.get("weight", 0) if weight is None else weight),
        "salt": f"{namespace}/{name}",
        "sticky": spec.get("sticky"),
        "jwt": _jwt(spec.get("jwt"), namespace, name),
        "requestHeaders": spec.get("requestHeaders", {}),
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _weight(value: Any) -> Any:
    """One spelling per weight (``30``, never ``30.0``), so equal routes get equal checksums."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return value  # the loader reports it with its path
    rounded = round(float(value), 2)
    if abs(rounded - float(value)) > 1e-9:
        return value  # more than two decimals: reported by the loader
    return int(rounded) if rounded.is_integer() else rounded


def _mirror(given: Any, percent: float | None) -> Any:
    """``spec.mirror`` with its defaults spelled out (one document per meaning); a rollout's percent wins."""
    if given is None and percent is None:
        return None
    if given is not None and not isinstance(given, Mapping):
        return given  # the loader reports it with its path
    out = dict(given or {})
    if percent is not None:
        out["percent"] = percent
    if "percent" in out:
        out["percent"] = _weight(out["percent"])
    out.setdefault("methods", [])
    out.setdefault("maxBodyBytes", DEFAULT_MIRROR_BODY)
    compare = out.get("compare", {})
    if isinstance(compare, Mapping):
        out["compare"] = {"body": False, "ignoreHeaders": [], **compare}
    return out


def _hosts(hosts: Any) -> Any:
    if not isinstance(hosts, list):
        return hosts
    out = [h.lower().rstrip(".") if isinstance(h, str) else h for h in hosts]
    return list(dict.fromkeys(out)) if all(isinstance(h, str) for h in out) else out


def _upstream(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    spec = _mapping(obj.get("spec"))
    out: dict[str, Any] = {"url": upstream_url(spec, namespace)}
    for key in ("metadata", "timeoutSeconds", "maxConnections"):
        if key in spec:
            out[key] = spec[key]
    out.setdefault("metadata", {})
    out.setdefault("timeoutSeconds", 30)
    out.setdefault("maxConnections", 256)
    unknown = [k for k in spec if k not in UPSTREAM_SPEC_KEYS]
    for key in unknown:  # smuggle unknown fields in so the loader reports them with a path
        out[key] = spec[key]
    return out


def upstream_url(spec: Mapping[str, Any], namespace: str) -> Any:
    """``service`` -> ``http://<name>.<namespace>.svc:<port>``; ``url`` as given; both/neither -> None."""
    service, url = spec.get("service"), spec.get("url")
    if (service is None) == (url is None):
        return None
    if isinstance(service, Mapping):
        return f"http://{service.get('name')}.{namespace}.svc:{service.get('port')}"
    return url


def _candidates(version_routing: Any, upstreams: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not isinstance(version_routing, Mapping):
        return []
    selector = version_routing.get("upstreamSelector")
    return sorted(
        n
        for n, obj in upstreams.items()
        if selector_matches(selector, _mapping(obj.get("metadata")).get("labels"))
    )


def _version_routing(version_routing: Any, candidates: list[str]) -> Any:
    if not isinstance(version_routing, Mapping):
        return version_routing
    out = {k: v for k, v in version_routing.items() if k != "upstreamSelector"}
    out["candidates"] = candidates
    return out


def _jwt(jwt: Any, namespace: str, name: str) -> Any:
    if not isinstance(jwt, Mapping):
        return jwt
    out = dict(jwt)
    ref = jwt.get("secretRef")
    if isinstance(ref, Mapping):
        # The document names the operator-owned mirror in the install namespace, never the secret itself.
        out["secretRef"] = {"name": mirrored_secret_name(namespace, name), "key": ref.get("key")}
    return out


def _tls(tls: Any, namespace: str, name: str, hosts: Any) -> Any:
    """``spec.tls`` -> the document's ``tls``: the operator's mirror of the Secret, offered for the route's
    DNS hosts (checked here, with the resource's paths, since they come from ``spec.hosts``)."""
    if not isinstance(tls, Mapping):
        return tls  # the loader reports it
    secret = tls.get("secretName")
    if not isinstance(secret, str) or not K8S_NAME.fullmatch(secret) or len(secret) > 253:
        raise CompileError(
            INVALID, [FieldError("spec.tls.secretName", "must be a Secret name (DNS subdomain)")]
        )
    names = [h for h in hosts if isinstance(h, str) and is_sni_name(h)] if isinstance(hosts, list) else []
    if not names:
        message = "needs at least one DNS name in spec.hosts (SNI carries names, not addresses)"
        raise CompileError(INVALID, [FieldError("spec.tls", message)])
    out = {k: v for k, v in tls.items() if k not in TLS_KEYS}  # unknown keys: the loader names them
    out |= {"secretName": mirrored_secret_name(namespace, name, "tls"), "hosts": names,
            "redirectHTTP": tls.get("redirectHTTP", False)}  # fmt: skip
    return out


def _to_resource_path(error: FieldError, upstreams: Mapping[str, Mapping[str, Any]]) -> FieldError:
    """Map a document path (``rules[2].match…``) to the resource path (``spec.rules[2].match…``)."""
    path = error.path
    for name in sorted(upstreams, key=len, reverse=True):
        head = f"upstreams.{name}"
        if path == head or path.startswith((head + ".", head + "[")):
            return FieldError(f"Upstream {name}: spec{path[len(head) :]}", error.message)
    if path.startswith("versionRouting.candidates"):
        return FieldError("spec.versionRouting.upstreamSelector", f"selected Upstreams: {error.message}")
    if path.startswith(("versionRouting", *_SPEC_KEYS)):
        return FieldError(f"spec.{path}", error.message)
    return FieldError(f"spec ({path or 'document'})", error.message)
