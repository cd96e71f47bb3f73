"""The catalogue of ingress-nginx annotations the import does not carry over (graylane.migrate.annotations):
complete against ingress-nginx's documented table, warnings on main Ingresses, notes where ingress-nginx
ignored the annotation itself."""

from __future__ import annotations

from typing import Any

from ingress_manifests import canary, ingress

from graylane.migrate.annotations import ADVICE, CANARY, DECIDED_ELSEWHERE, SAME_BEHAVIOUR, advice
from graylane.migrate.model import ImportOptions, ImportResult
from graylane.migrate.plan import import_ingresses

# The annotation table of ingress-nginx's docs/user-guide/nginx-configuration/annotations.md (2026-03).
_TABLE = """affinity affinity-canary-behavior affinity-mode app-root auth-cache-duration auth-cache-key
auth-keepalive auth-keepalive-requests auth-keepalive-share-vars auth-keepalive-timeout auth-proxy-set-headers
auth-realm auth-secret auth-secret-type auth-snippet auth-tls-error-page auth-tls-match-cn
auth-tls-pass-certificate-to-upstream auth-tls-secret auth-tls-verify-client auth-tls-verify-depth auth-type
auth-url backend-protocol canary canary-by-cookie canary-by-header canary-by-header-pattern
canary-by-header-value canary-weight canary-weight-total client-body-buffer-size configuration-snippet
connection-proxy-header cors-allow-credentials cors-allow-headers cors-allow-methods cors-allow-origin
cors-expose-headers cors-max-age custom-headers custom-http-errors default-backend denylist-source-range
enable-access-log enable-cors enable-global-auth enable-modsecurity enable-opentelemetry
enable-owasp-core-rules enable-rewrite-log force-ssl-redirect from-to-www-redirect http2-push-preload
limit-connections limit-rps load-balance mirror-host mirror-request-body mirror-target modsecurity-snippet
modsecurity-transaction-id opentelemetry-trust-incoming-span permanent-redirect permanent-redirect-code
preserve-trailing-slash proxy-body-size proxy-buffer-size proxy-buffering proxy-buffers-number
proxy-busy-buffers-size proxy-connect-timeout proxy-cookie-domain proxy-cookie-path proxy-http-version
proxy-max-temp-file-size proxy-next-upstream proxy-next-upstream-timeout proxy-next-upstream-tries
proxy-read-timeout proxy-redirect-from proxy-redirect-to proxy-request-buffering proxy-send-timeout
proxy-ssl-ciphers proxy-ssl-name proxy-ssl-protocols proxy-ssl-secret proxy-ssl-server-name proxy-ssl-verify
proxy-ssl-verify-depth rewrite-target satisfy server-alias server-snippet service-upstream
session-cookie-change-on-failure session-cookie-conditional-samesite-none session-cookie-domain
session-cookie-expires session-cookie-max-age session-cookie-name session-cookie-path session-cookie-samesite
session-cookie-secure ssl-ciphers ssl-passthrough ssl-prefer-server-ciphers ssl-redirect stream-snippet
temporal-redirect temporal-redirect-code upstream-hash-by upstream-vhost use-regex whitelist-source-range
x-forwarded-prefix"""
DOCUMENTED = _TABLE.split()


def run(objects: list[dict[str, Any]]) -> ImportResult:
    return import_ingresses([("test.yaml", o) for o in objects], ImportOptions())


def messages(result: ImportResult, severity: str) -> list[str]:
    return [str(f) for f in result.findings if f.severity == severity]


def test_every_documented_annotation_is_translated_or_has_advice() -> None:
    assert len(DOCUMENTED) == 117
    unknown = [
        n
        for n in DOCUMENTED
        if n not in CANARY | DECIDED_ELSEWHERE | SAME_BEHAVIOUR.keys()
        and advice(n) == "unknown to the importer"
    ]
    assert unknown == []
    assert advice("made-up") == "unknown to the importer" and advice("cors-max-age") == ADVICE["cors-"]


def test_main_ingress_annotations_are_warnings_canary_ones_mostly_notes() -> None:
    main_notes = {
        "rewrite-target": "/",
        "limit-rps": "5",
        "service-upstream": "true",
        "made-up": "1",
        "cert-manager.io/cluster-issuer": "letsencrypt",
    }
    objects = [
        ingress("checkout", "checkout-v1", annotations=main_notes),
        canary(
            "checkout-canary",
            "checkout-v2",
            {"canary-weight": "5", "limit-rps": "1", "affinity": "cookie", "session-cookie-name": "s"},
        ),
    ]
    result = run(objects)
    warnings, notes = messages(result, "warning"), messages(result, "note")
    assert any(
        "shop/checkout: metadata.annotations[nginx.ingress.kubernetes.io/rewrite-target]: not carried "
        "over, Graylane does not rewrite paths" in w
        for w in warnings
    )
    assert any("limit-rps" in w and "shop/checkout:" in w for w in warnings)
    assert any("made-up]: not carried over, unknown to the importer" in w for w in warnings)
    assert any("service-upstream" in n and "as service-upstream does" in n for n in notes)
    assert any("checkout-canary" in n and "limit-rps" in n and "ignored on a canary" in n for n in notes)
    assert any(
        "checkout-canary" in w and "affinity]" in w and "--sticky cookie:<name>" in w for w in warnings
    )
    assert any("checkout-canary" in w and "session-cookie-name" in w for w in warnings)
    assert not any("cert-manager" in f for f in warnings + notes)  # other prefixes are not ingress-nginx's
