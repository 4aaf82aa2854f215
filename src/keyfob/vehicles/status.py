"""The contract's ``Status`` document (§8), from the latest telemetry a vehicle published.

``profile=fleet`` (default) is everything the vehicle reported; ``profile=endUser`` is what its
driver's privacy setting lets through: ``Geolocation`` hides the position, ``Full`` keeps only
the privacy state itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from keyfob.kit.clock import isoformat

Profile = Literal["fleet", "endUser"]
ALWAYS_KEPT = ("privacy", "createdAt", "updatedAt", "vin", "_links")
POSITION = ("lastPosition",)


def status_document(
    *,
    vin: str,
    reported: dict[str, Any],
    reported_at: datetime,
    profile: Profile,
    self_href: str,
    vehicle_href: str,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        **reported,
        "vin": vin,
        "createdAt": isoformat(reported_at),
        "updatedAt": isoformat(reported_at),
        "_links": {"self": {"href": self_href}, "vehicle": {"href": vehicle_href}},
    }
    stolen = reported.get("stolen")
    if isinstance(stolen, dict) and stolen.get("id"):
        document["stolen"] = {
            **stolen,
            "_links": {
                "self": {"href": f"{vehicle_href}/stolen/{stolen['id']}"},
                "vehicle": {"href": vehicle_href},
            },
        }
    if profile == "endUser":
        privacy = (reported.get("privacy") or {}).get("state", "None")
        if privacy == "Full":
            document = {k: v for k, v in document.items() if k in ALWAYS_KEPT}
        elif privacy == "Geolocation":
            document = {k: v for k, v in document.items() if k not in POSITION}
    return document


def stolen_context(
    *, reported: dict[str, Any], reported_at: datetime, stolen_id: str, vehicle_href: str
) -> dict[str, Any] | None:
    """The stolen object the vehicle last reported, if it has this id."""
    stolen = reported.get("stolen")
    if not isinstance(stolen, dict) or stolen.get("id") != stolen_id:
        return None
    return {
        "createdAt": isoformat(reported_at),
        "updatedAt": isoformat(reported_at),
        **stolen,
        "_links": {
            "self": {"href": f"{vehicle_href}/stolen/{stolen_id}"},
            "vehicle": {"href": vehicle_href},
        },
    }
