"""The Gateway API features Graylane declares in ``GatewayClass.status.supportedFeatures``.

The list is what the conformance suite of the pinned release has passed against Graylane, nothing more:
the suite infers from it which tests to run, so a feature named here that fails is a failed conformance run.
An extended feature is built and unit-tested first, then declared once ``make conformance`` with
``ARGS=--supported-features=...`` naming it passes its tests (``make test`` then runs them on every change).
"""

from __future__ import annotations

GATEWAY_API_VERSION = "v1.6.3"
SUPPORTED_BUNDLE_VERSIONS = ("v1.6.",)  # CRD bundle versions this controller understands (prefix match)

CORE: tuple[str, ...] = ("Gateway", "HTTPRoute", "ReferenceGrant")

EXTENDED: tuple[str, ...] = (
    "HTTPRouteMethodMatching",
    "HTTPRouteQueryParamMatching",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRoutePortRedirect",
    "HTTPRouteSchemeRedirect",
    "HTTPRoutePathRedirect",
    "HTTPRouteHostRewrite",
    "HTTPRoutePathRewrite",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteBackendTimeout",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteBackendProtocolWebSocket",
    "GatewayHTTPListenerIsolation",
    "HTTPRouteParentRefPort",
    "GatewayPort8080",
)

DECLARED: tuple[str, ...] = CORE + EXTENDED


def supported_features() -> list[dict[str, str]]:
    """``status.supportedFeatures`` of a Graylane GatewayClass: sorted, as the API wants it."""
    return [{"name": name} for name in sorted(DECLARED)]


def version_supported(bundle_version: str | None) -> bool:
    """Whether the installed CRDs' ``gateway.networking.k8s.io/bundle-version`` is one Graylane reads."""
    return bundle_version is not None and bundle_version.startswith(SUPPORTED_BUNDLE_VERSIONS)
