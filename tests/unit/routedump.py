"""The model back to a document: ``to_document(load_route_document(doc)) == doc`` for normalised documents.

Normalised means: optional keys written out (``rules``, ``versionRouting``, ``sticky``, ``jwt``,
``requestHeaders``, the upstream and jwt defaults), integral numbers as integers. Test code: the property
test in tests/unit/test_routeconfig.py uses it to prove that the loader keeps everything a document says.
"""

from __future__ import annotations

from typing import Any

from graylane.config.model import JwtSettings, Match, RouteConfig, StringMatch, UpstreamSpec


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def string_match_doc(m: StringMatch, name_key: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name_key is not None:
        out[name_key] = m.name
    if m.op == "in":
        out["in"] = list(m.values)
    elif m.op == "present":
        out["present"] = True
    else:
        out[m.op] = m.value
    if m.invert:
        out["invert"] = True
    return out


def match_doc(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lists: list[tuple[str, tuple[StringMatch, ...], str]] = [
        ("headers", match.headers, "name"),
        ("query", match.query, "name"),
        ("cookies", match.cookies, "name"),
        ("jwtClaims", match.jwt_claims, "claim"),
    ]
    for key, items, name_key in lists:
        if items:
            out[key] = [string_match_doc(m, name_key) for m in items]
    for key, values in (
        ("sourceCIDRs", match.source_cidrs),
        ("sourceCountries", match.source_countries),
        ("methods", match.methods),
    ):
        if values:
            out[key] = list(values)
    if match.path is not None:
        out["path"] = string_match_doc(match.path, None)
    return out


def _upstream_doc(u: UpstreamSpec) -> dict[str, Any]:
    return {
        "url": u.url,
        "metadata": dict(u.metadata),
        "timeoutSeconds": _num(u.timeout_seconds),
        "maxConnections": u.max_connections,
    }


def _jwt_doc(j: JwtSettings) -> dict[str, Any]:
    return {
        "issuer": j.issuer,
        "audiences": list(j.audiences),
        "algorithms": list(j.algorithms),
        "leewaySeconds": j.leeway_seconds,
        "publicKeys": list(j.public_keys),
        "jwksURL": j.jwks_url,
        "secretRef": {"name": j.secret_ref.name, "key": j.secret_ref.key} if j.secret_ref else None,
    }


def to_document(config: RouteConfig) -> dict[str, Any]:
    """The normalised document of ``config`` (with its checksum as loaded); ``tls`` only when set, as the
    compile step writes it."""
    vr = config.version_routing
    r = config.route
    doc = {
        "schemaVersion": config.schema_version,
        "route": {"namespace": r.namespace, "name": r.name, "uid": r.uid, "generation": r.generation},
        "hosts": list(config.hosts),
        "pathPrefix": config.path_prefix,
        "stable": config.stable,
        "canary": config.canary,
        "upstreams": {name: _upstream_doc(u) for name, u in config.upstreams.items()},
        "rules": [{"name": x.name, "to": x.to, "match": match_doc(x.match)} for x in config.rules],
        "versionRouting": None
        if vr is None
        else {"header": vr.header, "metadataKey": vr.metadata_key, "candidates": list(vr.candidates)},
        "weight": _num(config.weight),
        "salt": config.salt,
        "sticky": None if config.sticky is None else {"keys": list(config.sticky.keys)},
        "jwt": None if config.jwt is None else _jwt_doc(config.jwt),
        "requestHeaders": {t: {"set": dict(h.set)} for t, h in config.request_headers.items()},
        "checksum": config.checksum,
    }
    if config.tls is not None:
        t = config.tls
        doc["tls"] = {"secretName": t.secret_name, "hosts": list(t.hosts), "redirectHTTP": t.redirect_http}
    return doc
