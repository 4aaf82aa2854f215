"""Every remote type travels API → dispatcher → Mosquitto → simulated car → Done, on both engines.

Each body asks for a change the car has not made yet, so the answer is a real ``Success``; the
car's new state then shows in the status document the platform serves (or, for the actions the
document has no field for, in the car itself).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import World, mqtt_world

from keyfob.sim.vehicle import SimVehicle
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms

pytestmark = pytest.mark.mqtt

PARIS = [2.3522, 48.8566]


def electric(status: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in status["energies"] if e["type"] == "Electric")
    return found


def air(status: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = status["preconditioning"]["airConditioning"]
    return found


StatusCheck = Callable[[dict[str, Any]], bool]
CarCheck = Callable[[SimVehicle], bool]

# remote type → (body, what the served status shows afterwards, what the car holds afterwards)
CASES: dict[str, tuple[dict[str, Any], StatusCheck | None, CarCheck | None]] = {
    "ThermalPreconditioning": (
        {"preconditioning": {"airConditioning": {"immediate": True}}},
        lambda s: air(s)["status"] == "Enabled",
        None,
    ),
    "ElectricBatteryChargingRequest": (
        {"charging": {"preferences": {"level": "Level5", "type": "Partial"}}},
        lambda s: (
            electric(s)["extension"]["electric"]["charging"]["chargingPowerLevel"] == "Level5"
        ),
        None,
    ),
    "Horn": ({"horn": {"state": "Activated"}}, None, None),
    "Doors": (
        {"door": {"state": "Unlocked"}},
        lambda s: s["doorsState"]["lockedStates"] == ["Unlocked"],
        None,
    ),
    "Lights": ({"lights": {"on": True}}, None, None),
    "Immobilization": (
        {"immobilization": {"activate": True}},
        None,
        lambda car: car.state.immobilized,
    ),
    "Stolen": ({"stolen": {"stolen": True}}, lambda s: s["stolen"]["state"] is True, None),
    "WakeUp": ({"wakeUp": {"action": "WakeUp"}}, None, None),
    "Navigation": (
        {"navigation": {"positions": [{"type": "Point", "coordinates": PARIS}]}},
        None,
        lambda car: car.state.destination == (tuple(PARIS),),
    ),
}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def fresh_status(world: World, vid: str, since: str) -> dict[str, Any]:
    """The served status once it was produced after ``since`` (an event date)."""
    await world.known(
        vid,
        lambda _, status: (
            status is not None and when(status["doorsState"]["createdAt"]) >= when(since)
        ),
    )
    served = await world.status(vid)
    assert served.status_code == 200, served.text
    document: dict[str, Any] = served.json()
    return document


@pytest.mark.parametrize("remote_type", sorted(CASES))
async def test_each_remote_type_succeeds_on_an_awake_car(
    db: Database, tmp_path: Path, remote_type: str
) -> None:
    body, status_check, car_check = CASES[remote_type]
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Electric"]
        done = await world.run(vid, body)
        assert done["type"] == remote_type
        assert done["status"] == "Success", done
        assert_conforms("b2b-api", "RemoteAction", {k: v for k, v in done.items() if k != "events"})
        statuses = [(e["type"], e["status"]) for e in done["events"]]
        sent_at = next(e["eventDate"] for e in done["events"] if e["status"] == "SentToVehicle")
        status = await fresh_status(world, vid, sent_at)
        car = world.car(vid)
    pending = [("Pending", s) for s in ("Accepted", "CheckingVehicle", "SentToVehicle")]
    if remote_type == "Navigation":
        pending = pending[1:]  # no Accepted (nor WakingUpVehicle) for navigation
    assert statuses == [*pending, ("Done", "Success")]
    # ``stolen`` is checked on its own below (the served object lacks its links).
    assert_conforms("b2b-api", "Status", {k: v for k, v in status.items() if k != "stolen"})
    if status_check is not None:
        assert status_check(status), status
    if car_check is not None:
        assert car_check(car)


@pytest.mark.parametrize("remote_type", ["Doors", "Navigation", "WakeUp"])
async def test_a_sleeping_car_is_woken_over_the_broker_first(
    db: Database, tmp_path: Path, remote_type: str
) -> None:
    body = CASES[remote_type][0]
    async with mqtt_world(db, tmp_path, start_awake=False) as world:
        vid = world.vids["Electric"]
        done = await world.run(vid, body)
        heard = world.sms.heard[world.vins[vid]]
    statuses = [e["status"] for e in done["events"]]
    assert heard == 1
    assert done["status"] == "Success", done
    if remote_type == "Navigation":
        assert statuses == ["CheckingVehicle", "SentToVehicle", "Success"]
    else:
        assert statuses == [
            "Accepted",
            "WakingUpVehicle",
            "CheckingVehicle",
            "SentToVehicle",
            "Success",
        ]


async def test_repeating_a_request_answers_already_done_from_the_cars_state(
    db: Database, tmp_path: Path
) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        first = await world.run(vid, {"door": {"state": "Unlocked"}})
        again = await world.run(vid, {"door": {"state": "Unlocked"}})
        served = (await world.status(vid)).json()
    assert first["status"] == "Success"
    assert again["status"] == "AlreadyDone"
    assert [e["status"] for e in again["events"]][-2:] == ["SentToVehicle", "AlreadyDone"]
    assert served["doorsState"]["lockedStates"] == ["Unlocked"]


async def test_a_stolen_cars_status_conforms(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Hybrid"]
        done = await world.run(vid, {"stolen": {"stolen": True}})
        sent_at = next(e["eventDate"] for e in done["events"] if e["status"] == "SentToVehicle")
        status = await fresh_status(world, vid, sent_at)
        context = await world.tenant.http.get(status["stolen"]["_links"]["self"]["href"])
        unknown = await world.tenant.http.get(f"{world.tenant.fleet}/vehicles/{vid}/stolen/nope")
    assert status["stolen"]["state"] is True
    assert_conforms("b2b-api", "Status", status)
    assert context.status_code == 200, context.text
    assert context.json()["id"] == status["stolen"]["id"]
    assert_conforms("b2b-api", "Stolen", context.json())
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 40499
