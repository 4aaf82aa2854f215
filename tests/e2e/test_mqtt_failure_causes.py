"""Every failure cause that can happen, produced for real: through Mosquitto, by the platform's
checks or by a simulated car put in the situation that makes it refuse.

``GeneralError`` is the one cause of the enum that never occurs: nothing in keyfob emits it,
since every refusal the platform or a car makes has a precise cause of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import Extra, World, mqtt_world
from sqlalchemy import update

from keyfob.auth.service import create_partner
from keyfob.kit.clock import utcnow
from keyfob.remotes.service import get_remote
from keyfob.sim.config import SimConfig
from keyfob.sim.faults import FaultPlan
from keyfob.sim.fleet import Knob
from keyfob.sim.outputs import Output
from keyfob.sim.vehicle import SimVehicle
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicles
from keyfob.vehicles.service import create_fleet
from keyfob.vocabulary import Motorization
from oracle_schemas import assert_conforms

pytestmark = pytest.mark.mqtt

HORN = {"horn": {"state": "Activated"}}
UNLOCK = {"door": {"state": "Unlocked"}}
LOCK = {"door": {"state": "Locked"}}
CLIMATE_NOW = {"preconditioning": {"airConditioning": {"immediate": True}}}
CHARGE_NOW = {"charging": {"immediate": True}}
SENT = ["Accepted", "CheckingVehicle", "SentToVehicle"]


def failed(done: dict[str, Any], cause: str, before: list[str]) -> None:
    """``done`` ended ``Failed`` with ``cause`` after exactly the pending statuses ``before``."""
    statuses = [e["status"] for e in done["events"]]
    assert statuses == [*before, "Failed"], done
    last = done["events"][-1]
    assert (last["type"], last["failureCause"]) == ("Done", cause)
    assert (done["status"], done["failureCause"]) == ("Failed", cause)
    assert_conforms("b2b-api", "RemoteAction", {k: v for k, v in done.items() if k != "events"})


def quietly(change: Callable[[SimVehicle], None]) -> Knob:
    """A knob from a change that publishes nothing by itself (it shows in the next telemetry)."""

    def knob(car: SimVehicle, now: datetime) -> list[Output]:
        change(car)
        return []

    return knob


def with_faults(plan: FaultPlan) -> Knob:
    """A knob: from now on this car suffers ``plan`` (the others are untouched)."""

    def knob(car: SimVehicle, now: datetime) -> list[Output]:
        car.config = replace(car.config, faults=plan)
        return []

    return knob


async def unlocked(world: World, vid: str) -> None:
    done = await world.run(vid, UNLOCK)
    assert done["status"] == "Success", done


# -- the car refuses ---------------------------------------------------------------------


async def test_vehicle_error(db: Database, tmp_path: Path) -> None:
    faulty = SimConfig(speed=0, faults=FaultPlan(vehicle_error=1.0))
    async with mqtt_world(db, tmp_path, sim=faulty) as world:
        done = await world.run(world.vids["Thermic"], HORN)
    failed(done, "VehicleError", SENT)


async def test_wrong_command_from_a_car_registered_with_capabilities_it_lacks(
    db: Database, tmp_path: Path
) -> None:
    misfit = Extra("misfit", Motorization.THERMIC, claims=Motorization.ELECTRIC)
    async with mqtt_world(db, tmp_path, extras=[misfit]) as world:
        done = await world.run(world.vids["misfit"], CHARGE_NOW)
    failed(done, "WrongCommand", SENT)


async def test_vehicle_in_use(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await world.act(vid, lambda car, now: car.set_ignition(True, now))
        done = await world.run(vid, HORN)
    failed(done, "VehicleInUse", SENT)


async def test_too_many_requests_sent_to_the_car(db: Database, tmp_path: Path) -> None:
    throttled = SimConfig(speed=0, max_commands=2, command_window=60)
    async with mqtt_world(db, tmp_path, sim=throttled) as world:
        vid = world.vids["Thermic"]
        answers = [await world.run(vid, HORN) for _ in range(3)]
    assert [a["status"] for a in answers[:2]] == ["Success", "Success"]
    failed(answers[2], "TooManyRequestSent", SENT)


async def test_doors_open(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await unlocked(world, vid)
        await world.act(vid, lambda car, now: car.open_door("Trunk", now))
        done = await world.run(vid, LOCK)
    failed(done, "DoorsOpen", SENT)


async def test_cid_inside(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await unlocked(world, vid)
        await world.act(vid, quietly(lambda car: car.set_key_inside(True)))
        done = await world.run(vid, LOCK)
    failed(done, "CidInside", SENT)


async def test_a_forced_lock_with_the_key_inside_succeeds_and_says_it_was_blacklisted(
    db: Database, tmp_path: Path
) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await unlocked(world, vid)
        await world.act(vid, quietly(lambda car: car.set_key_inside(True)))
        done = await world.run(vid, {"door": {"state": "Locked", "forced": True}})
    assert (done["status"], done["feedbackDetail"]) == ("Success", "CIDBlacklisted")
    assert done["events"][-1]["feedbackDetail"] == "CIDBlacklisted"


async def test_vehicle_error_or_cid_inside(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await unlocked(world, vid)
        await world.act(vid, with_faults(FaultPlan(vehicle_error=1.0)))
        done = await world.run(vid, LOCK)
    failed(done, "VehicleErrorOrCidInside", SENT)


async def test_vehicle_is_not_locked(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await unlocked(world, vid)
        done = await world.run(vid, {"immobilization": {"activate": True}})
    failed(done, "VehicleIsNotLocked", SENT)


async def test_vehicle_charging_system_error(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Electric"]
        await world.act(vid, lambda car, now: car.unplug(now))
        done = await world.run(vid, CHARGE_NOW)
    failed(done, "VehicleChargingSystemError", SENT)


async def test_external_charging_system_error(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Electric"]
        await world.act(vid, lambda car, now: car.plug(now))
        await world.act(vid, quietly(lambda car: car.set_charger_faulty(True)))
        done = await world.run(vid, CHARGE_NOW)
    failed(done, "ExternalChargingSystemError", SENT)


async def test_canceled_by_driver(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await world.act(vid, quietly(lambda car: car.cancel_next_command()))
        done = await world.run(vid, HORN)
        again = await world.run(vid, HORN)
    failed(done, "CanceledByDriver", SENT)
    assert again["status"] == "Success", "the driver cancels one command, not every one"


async def test_the_car_refuses_on_a_flat_12_volt_battery(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Thermic"]
        await world.act(vid, lambda car, now: car.set_voltage(11.5, now))
        done = await world.run(vid, HORN)
    failed(done, "NotPossibleDueToVehicleBatteryLevel", SENT)


# -- the platform refuses from what the car last reported --------------------------------


async def test_low_traction_battery_is_refused_before_any_command(
    db: Database, tmp_path: Path
) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Electric"]
        await world.act(vid, lambda car, now: car.set_battery_level(5, now))
        await world.known(vid, lambda _, s: s is not None and level(s) == 5)
        done = await world.run(vid, CLIMATE_NOW)
        commands = sum(world.spy.ids.values())
    failed(done, "NotPossibleDueToVehicleBatteryLevel", ["Accepted", "VehicleBatteryChargeTooLow"])
    assert done["events"][1]["type"] == "Pending"
    assert commands == 0


def level(status: dict[str, Any]) -> float:
    electric = next(e for e in status["energies"] if e["type"] == "Electric")
    return float(electric["level"])


async def test_privacy_level(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Hybrid"]
        await world.act(vid, lambda car, now: car.set_privacy("Full", now))
        await world.known(vid, lambda _, s: s is not None and s["privacy"]["state"] == "Full")
        done = await world.run(vid, HORN)
        stolen = await world.run(vid, {"stolen": {"stolen": True}})
    failed(done, "NotPossibleDueToVehiclePrivacyLevel", ["Accepted"])
    assert stolen["status"] == "Success", "security actions ignore the privacy setting"


async def test_stolen_state(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(db, tmp_path) as world:
        vid = world.vids["Hybrid"]
        declared = await world.run(vid, {"stolen": {"stolen": True}})
        await world.known(
            vid, lambda _, s: s is not None and "stolen" in s and s["stolen"]["state"]
        )
        done = await world.run(vid, UNLOCK)
        commands = sum(world.spy.ids.values())
    assert declared["status"] == "Success"
    failed(done, "NotPossibleDueToVehicleStolenState", ["Accepted"])
    assert commands == 1, "only the stolen declaration reached the car"


async def test_same_action_in_progress(db: Database, tmp_path: Path) -> None:
    async with mqtt_world(
        db, tmp_path, start_awake=False, vehicle={"wake_up_timeout_s": 2.0}
    ) as world:
        vid = world.vids["Thermic"]
        world.sms.barred.add(world.vins[vid])  # the first horn waits for a car that never wakes
        first = await world.post(vid, HORN)
        await until_status(world, vid, first, "WakingUpVehicle")
        second = await world.run(vid, HORN, timeout=1.5)
        first_done = await world.done(vid, first)
    failed(second, "SameActionInProgress", ["Accepted"])
    failed(first_done, "VehicleConnectionTimeout", ["Accepted", "WakingUpVehicle"])


async def until_status(world: World, vid: str, remote_id: str, status: str) -> None:
    for _ in range(200):
        body = await world.read(vid, remote_id)
        if body["status"] == status:
            return
        await asyncio.sleep(0.03)
    raise AssertionError(f"{remote_id} never reached {status}: {body}")


# -- wake-ups: budgets and cars that do not come ------------------------------------------

# Cars that fall asleep a second after their last message (the real window is minutes).
NAPPY = SimConfig(speed=0, awake_window=1.0, awake_extension=1.0, awake_cap=2.0)


async def woken_then_asleep(world: World, vid: str) -> None:
    """One remote that wakes the car (spending a wake-up), then the car falls asleep again."""
    done = await world.run(vid, HORN)
    assert [e["status"] for e in done["events"]][:2] == ["Accepted", "WakingUpVehicle"]
    assert done["status"] == "Success", done
    await world.known(vid, lambda presence, _: presence == "asleep")


async def test_too_many_wake_ups_over_month(db: Database, tmp_path: Path) -> None:
    budget = {"wake_up_quota_per_month": 1}
    async with mqtt_world(db, tmp_path, vehicle=budget, sim=NAPPY, start_awake=False) as world:
        vid = world.vids["Thermic"]
        await woken_then_asleep(world, vid)
        done = await world.run(vid, HORN)
        signals = world.sms.heard[world.vins[vid]]
    failed(done, "TooManyWakeUpsOverMonth", ["Accepted", "TooManyWakeUpsOverMonth"])
    assert signals == 1


async def test_too_many_requests_in_short_time(db: Database, tmp_path: Path) -> None:
    budget = {"short_window_wake_ups": 1, "short_window_s": 600}
    async with mqtt_world(db, tmp_path, vehicle=budget, sim=NAPPY, start_awake=False) as world:
        vid = world.vids["Thermic"]
        await woken_then_asleep(world, vid)
        done = await world.run(vid, HORN)
        signals = world.sms.heard[world.vins[vid]]
    failed(done, "TooManyRequestInShortTime", ["Accepted"])
    assert signals == 1


async def test_connection_timeout_when_the_wake_up_never_reaches_the_car(
    db: Database, tmp_path: Path
) -> None:
    quick = {"wake_up_timeout_s": 1.0}
    async with mqtt_world(db, tmp_path, vehicle=quick, start_awake=False) as world:
        vid = world.vids["Thermic"]
        world.sms.barred.add(world.vins[vid])
        done = await world.run(vid, HORN)
        signals = world.sms.heard[world.vins[vid]]
    failed(done, "VehicleConnectionTimeout", ["Accepted", "WakingUpVehicle"])
    assert signals == 1, "the platform did send the wake-up signal"


async def test_connection_timeout_when_the_car_is_offline(db: Database, tmp_path: Path) -> None:
    quick = {"wake_up_timeout_s": 1.0}
    async with mqtt_world(db, tmp_path, vehicle=quick) as world:
        vid = world.vids["Thermic"]
        await world.act(vid, lambda car, now: car.go_offline(60, now))
        await world.known(vid, lambda presence, _: presence == "offline")  # its last will
        done = await world.run(vid, HORN)
    failed(done, "VehicleConnectionTimeout", ["Accepted", "WakingUpVehicle"])


async def test_connection_timeout_when_the_command_is_lost(db: Database, tmp_path: Path) -> None:
    quick = {"command_timeout_s": 1.0}
    async with mqtt_world(db, tmp_path, vehicle=quick) as world:
        vid = world.vids["Thermic"]
        await world.act(vid, with_faults(FaultPlan(drop_command=1.0)))
        done = await world.run(vid, HORN)
        sent = dict(world.spy.ids)
    failed(done, "VehicleConnectionTimeout", SENT)
    assert list(sent.values()) == [1], "one command went out and was never answered"


# -- rights ------------------------------------------------------------------------------


async def test_missing_rights_when_the_car_left_the_fleet_before_dispatch(
    db: Database, tmp_path: Path
) -> None:
    async with mqtt_world(db, tmp_path, dispatching=False) as world:
        vid = world.vids["Thermic"]
        remote_id = await world.post(vid, HORN)
        async with db.transaction() as conn:
            buyer = await create_partner(
                conn, login="buyer", password="buyer-secret-password", name="b", now=utcnow()
            )
            elsewhere = await create_fleet(conn, partner_id=buyer.id, name="b", now=utcnow())
            await conn.execute(
                update(vehicles).where(vehicles.c.id == vid).values(fleet_id=elsewhere.id)
            )
        await world.start_dispatcher()
        events = await events_in_db(world, vid, remote_id)
        commands = sum(world.spy.ids.values())
    assert [(e.status, e.failure_cause) for e in events] == [
        ("Accepted", None),
        ("Failed", "MissingRights"),
    ]
    assert commands == 0


async def events_in_db(world: World, vid: str, remote_id: str) -> list[Any]:
    """The remote's history read where the caller cannot any more (the car left its fleet)."""
    for _ in range(300):
        async with world.db.read() as conn:
            _, events = await get_remote(
                conn,
                fleet_id=world.tenant.fleet_id,
                vehicle_id=vid,
                callback_id=world.callback_id,
                remote_id=remote_id,
            )
        if events[-1].type == "Done":
            return events
        await asyncio.sleep(0.03)
    raise AssertionError(f"{remote_id} never finished: {events}")
