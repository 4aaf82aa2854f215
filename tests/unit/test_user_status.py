"""What the user face shows of a car: its status by privacy and scopes, its capabilities."""

from __future__ import annotations

from typing import Any

import pytest
from test_sim_status import busy_vehicle

from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.user_status import user_status_document
from keyfob.vehicles.user_vehicles import user_capabilities
from keyfob.vocabulary import Motorization
from oracle_schemas import assert_conforms

HREF = "https://keyfob.example/connectedcar/v4/user/vehicles/V1"
EVERY_SCOPE = {"data:telemetry", "data:position"}


def served(motorization: Motorization, privacy: str, scopes: set[str]) -> dict[str, Any]:
    vehicle, clock = busy_vehicle(motorization)
    vehicle.set_privacy(privacy)
    return user_status_document(
        vin=vehicle.vin,
        reported=vehicle.status(),
        reported_at=clock(),
        scopes=scopes,
        self_href=f"{HREF}/status",
        vehicle_href=HREF,
    )


@pytest.mark.parametrize("motorization", list(Motorization))
def test_the_status_conforms_and_holds_no_fleet_member(motorization: Motorization) -> None:
    document = served(motorization, "None", EVERY_SCOPE)
    assert_conforms("b2c-api", "Status", document)
    # The busy vehicle was declared stolen and reports it: the fleet sees it, the driver never.
    vehicle, _ = busy_vehicle(motorization)
    assert "stolen" in vehicle.status()
    assert not {"stolen", "vin", "_embedded", "transmission", "adas"} & set(document)
    assert {"lastPosition", "doorsState", "energies", "privacy"} <= set(document)
    assert document["_links"] == {"self": {"href": f"{HREF}/status"}, "vehicle": {"href": HREF}}


def test_position_and_telemetry_follow_the_token_scopes() -> None:
    electric = Motorization.ELECTRIC
    no_position = served(electric, "None", {"data:telemetry"})
    assert "lastPosition" not in no_position
    assert "doorsState" in no_position
    only_position = served(electric, "None", {"data:position"})
    assert set(only_position) == {"createdAt", "updatedAt", "_links", "lastPosition"}
    nothing = served(electric, "None", set())
    assert set(nothing) == {"createdAt", "updatedAt", "_links"}
    for document in (no_position, only_position, nothing):
        assert_conforms("b2c-api", "Status", document)


def test_the_cars_privacy_setting_wins_over_scopes() -> None:
    geolocation = served(Motorization.HYBRID, "Geolocation", EVERY_SCOPE)
    assert "lastPosition" not in geolocation
    assert "doorsState" in geolocation
    full = served(Motorization.HYBRID, "Full", EVERY_SCOPE)
    assert set(full) == {"createdAt", "updatedAt", "_links", "privacy"}
    assert full["privacy"]["state"] == "Full"


@pytest.mark.parametrize("motorization", list(Motorization))
@pytest.mark.parametrize("immobilization", [True, False])
def test_user_capabilities_offer_only_user_face_remotes(
    motorization: Motorization, immobilization: bool
) -> None:
    stored = capabilities_for(motorization, immobilization=immobilization)
    shown = user_capabilities(stored)
    assert_conforms("b2c-api", "OnboardCapabilities", shown)
    assert set(shown["remote"]) == {
        "preconditioning",
        "charging",
        "door",
        "horn",
        "lights",
        "wakeup",
        "navigation",
    }
    assert shown["data"] == stored["data"]
    assert "stolen" in stored["remote"], "the stored document is left as it was"
