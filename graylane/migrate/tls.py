"""Ingress ``spec.tls`` and the HTTPS redirect annotations -> CanaryRoute ``spec.tls`` (one decision, here).

ingress-nginx terminates TLS for a host with the Secret its Ingresses name and, by default
(``ssl-redirect: "true"``), redirects plain HTTP to HTTPS for it; ``force-ssl-redirect: "true"`` redirects
even without a TLS section. CanaryRoute gains ``spec.tls: {secretName, redirectHTTP}`` with TLS
termination (issue 14), so ``TLS_SUPPORTED`` is on; with it off (``supported=False``) every such section
would be a warning saying what to do instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graylane.migrate.model import FALSE, TRUE, Finding, Ingress, IngressTLS

TLS_SUPPORTED = True  # CanaryRoute has spec.tls (issue 14)


def tls_mapping(
    ingresses: Sequence[Ingress], hosts: Sequence[str], *, prefix: str, supported: bool = TLS_SUPPORTED
) -> tuple[dict[str, Any] | None, list[Finding]]:
    """``spec.tls`` for a route serving ``hosts`` ([] = any host) of the main and canary Ingress, or None."""
    sections = [(ing, t) for ing in ingresses for t in ing.tls if _covers(t, hosts)]
    redirect = _redirects(ingresses[0], prefix, tls=bool(sections))
    if not sections:
        if not redirect:
            return None, []
        path = f"metadata.annotations[{prefix}/force-ssl-redirect]"
        message = "not carried over, Graylane does not redirect HTTP to HTTPS; redirect in front of it"
        return None, [Finding("warning", ingresses[0].subject, path, message)]
    if not supported:
        return None, [_unsupported(ing, t, redirect) for ing, t in sections]
    return _spec(sections, redirect)


def _covers(section: IngressTLS, hosts: Sequence[str]) -> bool:
    return not section.hosts or not hosts or bool(set(section.hosts) & set(hosts))


def _redirects(main: Ingress, prefix: str, *, tls: bool) -> bool:
    forced = main.annotations.get(f"{prefix}/force-ssl-redirect") in TRUE
    return forced or (tls and main.annotations.get(f"{prefix}/ssl-redirect") not in FALSE)


def _unsupported(ingress: Ingress, section: IngressTLS, redirect: bool) -> Finding:
    secret = f"Secret {section.secret_name}" if section.secret_name else "the default certificate"
    hosts = ", ".join(section.hosts) or "any host"
    then = "; redirect HTTP to HTTPS there too (ingress-nginx did)" if redirect else ""
    message = (
        f"TLS for {hosts} with {secret}: not carried over, this Graylane version does not terminate TLS; "
        f"terminate it in front of the proxy{then}"
    )
    return Finding("warning", ingress.subject, section.where, message)


def _spec(
    sections: Sequence[tuple[Ingress, IngressTLS]], redirect: bool
) -> tuple[dict[str, Any] | None, list[Finding]]:
    secrets = sorted({t.secret_name for _, t in sections if t.secret_name})
    ingress, first = sections[0]
    if len(secrets) != 1 or any(t.secret_name is None for _, t in sections):
        found = ", ".join(secrets) or "none (ingress-nginx's default certificate)"
        message = (
            f"the route's hosts need one Secret, found {found}: set spec.tls by hand (or split the route)"
        )
        return None, [Finding("warning", ingress.subject, first.where, message)]
    return {"secretName": secrets[0], "redirectHTTP": redirect}, []
