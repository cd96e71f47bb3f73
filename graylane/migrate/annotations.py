"""Every ingress-nginx annotation the import does not carry over, with what to do instead.

The canary annotations are translated (:mod:`graylane.migrate.canary`); ``use-regex`` and the TLS redirects
are decided with the paths and TLS sections. Everything else under the annotation prefix becomes a warning on
the Ingress that carries it. On a canary Ingress ingress-nginx itself ignores all but the canary, session
affinity, ``load-balance`` and ``upstream-hash-by`` annotations (they come from the main Ingress), so there
the rest are notes: no behaviour is lost.
"""

from __future__ import annotations

from collections.abc import Iterator

from graylane.migrate.model import Finding, Ingress

CANARY = frozenset(
    {"canary", "canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie"}
    | {"canary-weight", "canary-weight-total"}
)
DECIDED_ELSEWHERE = frozenset({"use-regex", "ssl-redirect", "force-ssl-redirect"})  # paths, TLS
SAME_BEHAVIOUR = {
    "service-upstream": "Graylane always sends to the Service's cluster address, as service-upstream does",
}
HONOURED_ON_CANARY = frozenset(
    {"load-balance", "upstream-hash-by", "affinity", "affinity-mode", "affinity-canary-behavior"}
)

_STICKY = "use `--sticky cookie:<name>` (spec.sticky) on a cookie your application sets; Graylane reads it"
_NGINX_CONF = "nginx configuration is not carried over; re-implement what it did in the application"
_NO_AUTH = "Graylane does not authenticate; keep this check in the application or a gateway in front"
_TIMEOUT = "Upstream spec.timeoutSeconds limits a whole request (default 30); set it by hand if needed"
_BODY = "Graylane streams bodies; the limit is the proxy flag --max-body-bytes for every route"
_RETRY = "Graylane retries once, on stable, only when the canary refuses or resets the connection"
_OBSERVE = "Graylane exports Prometheus metrics per route and track (/metrics); no per-Ingress switch"

# Annotation name (after the prefix) or name prefix ending in "-" -> what to do instead.
ADVICE: dict[str, str] = {
    "rewrite-target": "Graylane does not rewrite paths",
    "app-root": "Graylane does not redirect; redirect / in the application",
    "x-forwarded-prefix": "Graylane does not rewrite paths or send X-Forwarded-Prefix",
    "affinity": _STICKY,
    "affinity-mode": _STICKY,
    "affinity-canary-behavior": _STICKY
    + " (users stay on their track as the weight grows: the split is monotone)",
    "session-cookie-": _STICKY,
    "auth-": _NO_AUTH,
    "enable-global-auth": _NO_AUTH,
    "satisfy": _NO_AUTH,
    "backend-protocol": "Upstreams speak HTTP/1.1; for HTTPS give the Upstream spec.url https://…",
    "client-body-buffer-size": _BODY,
    "proxy-body-size": _BODY,
    "proxy-buffering": _BODY,
    "proxy-buffers-number": _BODY,
    "proxy-buffer-size": _BODY,
    "proxy-busy-buffers-size": _BODY,
    "proxy-max-temp-file-size": _BODY,
    "proxy-request-buffering": _BODY,
    "configuration-snippet": _NGINX_CONF,
    "server-snippet": _NGINX_CONF,
    "stream-snippet": _NGINX_CONF,
    "modsecurity-snippet": _NGINX_CONF,
    "custom-http-errors": "Graylane passes upstream error pages through unchanged",
    "default-backend": "requests no route matches get 404 from Graylane",
    "enable-cors": "Graylane does not answer CORS preflights; send the CORS headers from the application",
    "cors-": "Graylane does not answer CORS preflights; send the CORS headers from the application",
    "from-to-www-redirect": "Graylane does not redirect; add the other name to spec.hosts",
    "permanent-redirect": "Graylane does not redirect",
    "permanent-redirect-code": "Graylane does not redirect",
    "temporal-redirect": "Graylane does not redirect",
    "temporal-redirect-code": "Graylane does not redirect",
    "preserve-trailing-slash": "Graylane does not redirect",
    "http2-push-preload": "HTTP/2 server push is not supported (browsers dropped it)",
    "limit-": "Graylane does not rate-limit; limit in front of it or in the application",
    "global-rate-limit": "Graylane does not rate-limit; limit in front of it or in the application",
    "global-rate-limit-": "Graylane does not rate-limit; limit in front of it or in the application",
    "proxy-connect-timeout": "the proxy flag --connect-timeout applies to every upstream",
    "proxy-read-timeout": _TIMEOUT,
    "proxy-send-timeout": _TIMEOUT,
    "proxy-next-upstream": _RETRY,
    "proxy-next-upstream-": _RETRY,
    "proxy-redirect-": "Graylane does not rewrite Location headers",
    "proxy-cookie-": "Graylane does not rewrite Set-Cookie headers",
    "proxy-http-version": "Graylane speaks HTTP/1.1 to upstreams",
    "proxy-ssl-": "backend TLS settings are not carried over; give the Upstream spec.url https://…",
    "server-alias": "add the alias names to the CanaryRoute's spec.hosts",
    "ssl-passthrough": "Graylane does not pass TLS through",
    "ssl-ciphers": "TLS settings are not carried over",
    "ssl-prefer-server-ciphers": "TLS settings are not carried over",
    "upstream-hash-by": "Graylane balances through the Service; for a sticky split use --sticky",
    "load-balance": "Graylane balances through the Service (kube-proxy)",
    "upstream-vhost": "Graylane forwards the client's Host header unchanged",
    "whitelist-source-range": "Graylane does not filter clients (sourceCIDRs only choose a track)",
    "allowlist-source-range": "Graylane does not filter clients (sourceCIDRs only choose a track)",
    "denylist-source-range": "Graylane does not filter clients (sourceCIDRs only choose a track)",
    "connection-proxy-header": "Graylane manages connection headers itself",
    "enable-access-log": _OBSERVE,
    "enable-rewrite-log": _OBSERVE,
    "enable-opentracing": _OBSERVE,
    "opentracing-trust-incoming-span": _OBSERVE,
    "enable-opentelemetry": _OBSERVE,
    "opentelemetry-": _OBSERVE,
    "enable-influxdb": _OBSERVE,
    "influxdb-": _OBSERVE,
    "enable-modsecurity": "Graylane has no web application firewall",
    "enable-owasp-core-rules": "Graylane has no web application firewall",
    "modsecurity-transaction-id": "Graylane has no web application firewall",
    "mirror-": "request mirroring is not carried over",
    "custom-headers": "Graylane sets per-track request headers (spec.requestHeaders), not response headers",
}


def advice(name: str) -> str:
    """What to do instead of annotation ``name`` (without the prefix)."""
    if name in ADVICE:
        return ADVICE[name]
    prefixes = [p for p in ADVICE if p.endswith("-") and name.startswith(p)]
    return ADVICE[max(prefixes, key=len)] if prefixes else "unknown to the importer"


def annotation_findings(ingress: Ingress, *, role: str, prefix: str) -> Iterator[Finding]:
    """Warnings (notes on a canary Ingress, where ingress-nginx ignored them) for what is not carried over."""
    for key in sorted(ingress.annotations):
        if not key.startswith(prefix + "/"):
            continue
        name = key[len(prefix) + 1 :]
        if name in CANARY or name in DECIDED_ELSEWHERE:
            continue
        path = f"metadata.annotations[{key}]"
        if name in SAME_BEHAVIOUR:
            yield Finding("note", ingress.subject, path, SAME_BEHAVIOUR[name])
        elif role == "canary" and not _honoured_on_canary(name):
            yield Finding("note", ingress.subject, path, "ignored on a canary Ingress by ingress-nginx too")
        else:
            yield Finding("warning", ingress.subject, path, f"not carried over, {advice(name)}")


def _honoured_on_canary(name: str) -> bool:
    return name in HONOURED_ON_CANARY or name.startswith("session-cookie-")
