"""The Gateway API features Graylane declares in ``GatewayClass.status.supportedFeatures``.

The list is what the conformance suite of the pinned release has passed against Graylane, nothing more:
the suite infers from it which tests to run, so a feature named here that fails is a failed conformance run.
``IMPLEMENTED`` are extended features whose behaviour is built and unit-tested but not yet confirmed by the
suite; a passing ``make conformance`` run (``--supported-features`` with them) is what moves one up.
"""

from __future__ import annotations

GATEWAY_API_VERSION = "v1.6.3"
SUPPORTED_BUNDLE_VERSIONS = ("v1.6.",)  # CRD bundle versions this controller understands (prefix match)

DECLARED: tuple[str, ...] = ("Gateway", "HTTPRoute", "ReferenceGrant")

IMPLEMENTED: tuple[str, ...] = (
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
)


def supported_features() -> list[dict[str, str]]:
    """``status.supportedFeatures`` of a Graylane GatewayClass: sorted, as the API wants it."""
    return [{"name": name} for name in sorted(DECLARED)]


def version_supported(bundle_version: str | None) -> bool:
    """Whether the installed CRDs' ``gateway.networking.k8s.io/bundle-version`` is one Graylane reads."""
    return bundle_version is not None and bundle_version.startswith(SUPPORTED_BUNDLE_VERSIONS)
