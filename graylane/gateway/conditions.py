"""Status conditions as the spec names them, and their JSON form with generation and transition time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CONTROLLER = "graylane.io/gateway-controller"

ACCEPTED = "Accepted"
PROGRAMMED = "Programmed"
RESOLVED_REFS = "ResolvedRefs"
CONFLICTED = "Conflicted"
SUPPORTED_VERSION = "SupportedVersion"

# Reasons (a condition's type doubles as its positive reason).
INVALID = "Invalid"
PENDING = "Pending"
LISTENERS_NOT_VALID = "ListenersNotValid"
UNSUPPORTED_ADDRESS = "UnsupportedAddress"
ADDRESS_NOT_ASSIGNED = "AddressNotAssigned"
INVALID_PARAMETERS = "InvalidParameters"
UNSUPPORTED_VERSION = "UnsupportedVersion"
PORT_UNAVAILABLE = "PortUnavailable"
UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
UNSUPPORTED_VALUE = "UnsupportedValue"
NO_CONFLICTS = "NoConflicts"
HOSTNAME_CONFLICT = "HostnameConflict"
PROTOCOL_CONFLICT = "ProtocolConflict"
INVALID_CERTIFICATE_REF = "InvalidCertificateRef"
INVALID_ROUTE_KINDS = "InvalidRouteKinds"
REF_NOT_PERMITTED = "RefNotPermitted"
NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
NO_MATCHING_PARENT = "NoMatchingParent"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


def ok(kind: str, message: str = "") -> Condition:
    """The positive condition: its reason is its type (``Accepted``/``Accepted``)."""
    return Condition(kind, True, kind, message)


def render(
    conditions: Iterable[Condition], *, generation: int, previous: Any, now: str
) -> list[dict[str, Any]]:
    """The JSON conditions; ``lastTransitionTime`` stays the previous one while the status is unchanged."""
    before = {
        c.get("type"): c for c in (previous if isinstance(previous, list) else []) if isinstance(c, Mapping)
    }
    out = []
    for cond in conditions:
        status = "True" if cond.status else "False"
        old = before.get(cond.type)
        since = str(old["lastTransitionTime"]) if old and old.get("status") == status and old.get(
            "lastTransitionTime") else now  # fmt: skip
        out.append({
            "type": cond.type, "status": status, "reason": cond.reason, "message": cond.message[:1024],
            "observedGeneration": generation, "lastTransitionTime": since,
        })  # fmt: skip
    return out
