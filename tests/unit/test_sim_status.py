"""The simulated vehicle's status document against the contract's official Status schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keyfob.kit.clock import FakeClock, isoformat
from keyfob.link.protocol import Action, new_command
from keyfob.sim.config import SimConfig
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization
from oracle_schemas import assert_conforms

VIN = "VF3STATUSDOC00001"
HREF = "https://keyfob.example/connectedcar/v3/fleets/F1/vehicles/V1/status"


def as_served(doc: dict[str, Any], at: str) -> dict[str, Any]:
    """What the platform adds before serving the document."""
    served = {**doc, "vin": VIN, "createdAt": at, "_links": {"self": {"href": HREF}}}
    if "stolen" in served:
        served["stolen"] = {**served["stolen"], "_links": {"self": {"href": HREF + "/stolen"}}}
    return served


def busy_vehicle(motorization: Motorization) -> tuple[SimVehicle, FakeClock]:
    """A vehicle with every optional part of its status filled in."""
    clock = FakeClock()
    vehicle = SimVehicle(VIN, motorization, seed=9, clock=clock, config=SimConfig(speed=0))
    vehicle.connected(clock())
    program = {"slot": 1, "enabled": True, "start": "PT7H", "occurence": {"day": ["Mon"]}}
    commands: list[tuple[Action, dict[str, Any]]] = [
        (Action.PRECONDITIONING, {"airConditioning": {"immediate": True, "programs": [program]}}),
        (Action.STOLEN, {"stolen": True}),
        (Action.STOLEN, {"stolen": False}),
    ]
    if motorization in (Motorization.ELECTRIC, Motorization.HYBRID):
        vehicle.plug()
        later = isoformat(clock() + timedelta(hours=5))
        commands += [
            (Action.CHARGING, {"schedule": {"nextDelayedTime": later}}),
            (Action.CHARGING, {"immediate": True}),
        ]
    for action, params in commands:
        vehicle.handle_command(
            new_command(action, params, now=clock(), ttl=timedelta(minutes=1)), clock()
        )
    vehicle.open_door("Trunk")
    return vehicle, clock


@pytest.mark.parametrize("motorization", list(Motorization))
@pytest.mark.parametrize("privacy", ["None", "Geolocation", "Full"])
def test_the_status_conforms_to_the_contract(motorization: Motorization, privacy: str) -> None:
    vehicle, clock = busy_vehicle(motorization)
    vehicle.set_privacy(privacy)
    doc = vehicle.status()
    assert_conforms("b2b-api", "Status", as_served(doc, isoformat(clock())))
    assert_conforms("b2c-api", "Status", as_served(doc, isoformat(clock())))


def test_the_energies_follow_the_motorization() -> None:
    kinds = {}
    for motorization in Motorization:
        vehicle, _ = busy_vehicle(motorization)
        energies = vehicle.status()["energies"]
        kinds[motorization] = [(e["type"], e.get("subType")) for e in energies]
    assert kinds[Motorization.ELECTRIC] == [("Electric", "ElectricEnergy")]
    assert kinds[Motorization.HYBRID] == [("Fuel", "FossilEnergy"), ("Electric", "ElectricEnergy")]
    assert kinds[Motorization.THERMIC] == [("Fuel", "FossilEnergy")]
    assert kinds[Motorization.HYDROGEN] == [("Fuel", "Hydrogen"), ("Electric", "ElectricEnergy")]


def test_what_leaves_the_car_follows_its_privacy_setting() -> None:
    vehicle, _ = busy_vehicle(Motorization.ELECTRIC)
    assert "lastPosition" in vehicle.status()
    vehicle.set_privacy("Geolocation")
    doc = vehicle.status()
    assert "lastPosition" not in doc
    assert "doorsState" in doc
    vehicle.set_privacy("Full")
    assert set(vehicle.status()) == {"privacy", "stolen"}


def test_the_status_shows_what_the_commands_did() -> None:
    vehicle, _ = busy_vehicle(Motorization.ELECTRIC)
    doc = vehicle.status()
    air = doc["preconditioning"]["airConditioning"]
    assert (air["status"], air["programs"][0]["slot"]) == ("Enabled", 1)
    charging = doc["energies"][0]["extension"]["electric"]["charging"]
    assert (charging["plugged"], charging["status"]) == (True, "InProgress")
    assert charging["nextDelayedTime"] == "PT5H0M"
    assert doc["stolen"]["state"] is False
    assert {"identifier": "Trunk", "state": "Open"} in doc["doorsState"]["opening"]
    assert doc["battery"]["voltage"] > 12
