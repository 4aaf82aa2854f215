"""The user face's ``Status`` document (§8, b2c schema): what a driver may see of their car.

It is the fleet face's document (``vehicles.status``) narrowed three times:

* by the car's privacy setting, as ``profile=endUser`` does on the fleet face (§9.2): the
  user face always returns the end user's view;
* by the members the b2c ``Status`` schema has: fleet-only members (``vin``, ``stolen``,
  ``transmission``, ``adas``, ``wipingBlades``, ``_embedded``) are dropped, so a driver never
  learns that the fleet operator declared the car stolen and a client generated from the b2c
  schema meets no member it does not know;
* by the token's optional data scopes of ``getVehicleStatus``: ``lastPosition`` needs
  ``data:position``, every other telemetry member needs ``data:telemetry``. The dates and the
  links are always there.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from keyfob.vehicles.status import status_document

POSITION_SCOPE = "data:position"
TELEMETRY_SCOPE = "data:telemetry"
ALWAYS = frozenset({"createdAt", "updatedAt", "_links"})
POSITION = frozenset({"lastPosition"})
TELEMETRY = frozenset(
    {
        "alarm",
        "battery",
        "doorsState",
        "drivingBehavior",
        "energies",
        "engines",
        "environment",
        "ignition",
        "kinetic",
        "lightingSystem",
        "odometer",
        "powertrain",
        "preconditioning",
        "privacy",
        "safety",
        "service",
    }
)
"""The b2c ``Status`` members keyfob serves (its deprecated duplicates ``energy`` and
``preconditionning`` are not)."""


def visible_members(scopes: Collection[str]) -> frozenset[str]:
    """The members a token with these scopes may read."""
    members = ALWAYS
    if TELEMETRY_SCOPE in scopes:
        members |= TELEMETRY
    if POSITION_SCOPE in scopes:
        members |= POSITION
    return members


def user_status_document(
    *,
    vin: str,
    reported: dict[str, Any],
    reported_at: datetime,
    scopes: Collection[str],
    self_href: str,
    vehicle_href: str,
) -> dict[str, Any]:
    """The status as ``GET /user/vehicles/{id}/status`` serves it."""
    document = status_document(
        vin=vin,
        reported=reported,
        reported_at=reported_at,
        profile="endUser",
        self_href=self_href,
        vehicle_href=vehicle_href,
    )
    members = visible_members(scopes)
    return {key: value for key, value in document.items() if key in members}
