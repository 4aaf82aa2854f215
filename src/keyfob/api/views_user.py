"""The user face's response shapes (b2c schemas): the user and their vehicles, HAL links included.

Vehicle extensions (``?extension=``) are embedded under ``_embedded.extension`` as the b2c
``VehicleExtension`` has them:

* ``onboardCapabilities``: the vehicle's capabilities document (decision 17's layout), narrowed
  to the remotes the user face offers (``vehicles.user_vehicles.user_capabilities``);
* ``branding``: ``{brand, label}``. keyfob stores no make or model per vehicle, so ``brand`` is
  the brand of the realm the token was issued for (the brand whose login server the user went
  through, as each brand's own gateway answers with its brand), and ``label`` is that brand and
  the vehicle's motorization (``"Peugeot Electric"``), the nearest thing keyfob has to a model
  name;
* ``pictures``: accepted (it is in the documented enum) but embeds nothing: keyfob has no
  pictures, and the b2c ``VehiclePictures`` needs at least one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from keyfob.auth.realms import find_realm
from keyfob.kit.clock import isoformat
from keyfob.kit.hal import link
from keyfob.vehicles.service import Vehicle
from keyfob.vehicles.user_vehicles import user_capabilities

Extension = Literal["onboardCapabilities", "branding", "pictures"]
"""The documented ``VehicleExtensionType`` values; anything else is a 400 (decision 31)."""


def user_href(base: str) -> str:
    return f"{base}/user"


def vehicle_href(base: str, vehicle_id: str) -> str:
    return f"{base}/user/vehicles/{vehicle_id}"


def user_view(
    base: str,
    *,
    email: str,
    first_name: str | None,
    last_name: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_links": {
            "self": link(user_href(base)),
            "vehicles": link(f"{user_href(base)}/vehicles"),
        },
        "email": email,
    }
    if first_name:
        body["firstName"] = first_name
    if last_name:
        body["lastName"] = last_name
    body["createdAt"] = isoformat(created_at)
    return body


def branding(vehicle: Vehicle, realm: str) -> dict[str, str]:
    found = find_realm(realm)
    brand = found.brand if found is not None else "keyfob"
    return {"brand": brand, "label": f"{brand} {vehicle.motorization}"}


def user_vehicle_view(
    base: str, vehicle: Vehicle, *, extensions: Collection[str], realm: str
) -> dict[str, Any]:
    href = vehicle_href(base, vehicle.id)
    body: dict[str, Any] = {
        "_links": {
            "self": link(href),
            "user": link(user_href(base)),
            "status": link(f"{href}/status"),
            "callbacks": link(f"{user_href(base)}/callbacks"),
            "remotes": link(f"{href}/callbacks/{{cbid}}/remotes", templated=True),
        },
        "id": vehicle.id,
        "vin": vehicle.vin,
        "motorization": vehicle.motorization,
        "createdAt": isoformat(vehicle.created_at),
        "updatedAt": isoformat(vehicle.updated_at),
    }
    embedded: dict[str, Any] = {}
    if "onboardCapabilities" in extensions:
        embedded["onboardCapabilities"] = user_capabilities(vehicle.capabilities)
    if "branding" in extensions:
        embedded["branding"] = branding(vehicle, realm)
    if embedded:
        body["_embedded"] = {"extension": embedded}
    return body
