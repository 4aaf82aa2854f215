"""Charging and preconditioning programs run on their own, at their time, on their days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from keyfob.kit.clock import FakeClock
from keyfob.link.protocol import Action, new_command
from keyfob.sim import programs
from keyfob.sim.config import SimConfig
from keyfob.sim.outputs import Connect, Output, Timer
from keyfob.sim.state import Mode
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization

VIN = "VF3PROGRAMS000001"
THURSDAY = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)  # 1 January 2026 was a Thursday


def car() -> tuple[SimVehicle, FakeClock]:
    clock = FakeClock(THURSDAY)
    config = SimConfig(speed=0, awake_window=60, awake_extension=30, awake_cap=60, climate_run=600)
    vehicle = SimVehicle(VIN, Motorization.ELECTRIC, seed=2, clock=clock, config=config)
    vehicle.connected(clock())
    return vehicle, clock


def command(vehicle: SimVehicle, action: Action, params: dict[str, Any]) -> list[Output]:
    now = vehicle.clock()
    sent = new_command(action, params, now=now, ttl=timedelta(minutes=1))
    return vehicle.handle_command(sent, now)


def climate_program(start: str, days: list[str], *, enabled: bool = True) -> dict[str, Any]:
    return {
        "airConditioning": {
            "programs": [
                {"slot": 1, "enabled": enabled, "start": start, "occurence": {"day": days}}
            ]
        }
    }


def next_timer(vehicle: SimVehicle) -> datetime | None:
    timers = [o for o in vehicle.tick(vehicle.clock()) if isinstance(o, Timer)]
    assert len(timers) <= 1
    return timers[0].at if timers else None


def fall_asleep(vehicle: SimVehicle, clock: FakeClock) -> None:
    clock.advance(120)
    vehicle.tick(clock())
    assert vehicle.mode is Mode.ASLEEP


def test_times_of_day_read_as_iso_durations_from_midnight() -> None:
    assert programs.time_of_day("PT7H30M") == timedelta(hours=7, minutes=30)
    assert programs.time_of_day("PT0S") == timedelta(0)
    assert programs.time_of_day("PT23H59M59S") == timedelta(hours=23, minutes=59, seconds=59)
    for unreadable in ("P1D", "PT24H", "07:30", "PT", "P", "", None, 730):
        assert programs.time_of_day(unreadable) is None


def test_the_next_start_is_the_earliest_enabled_program_on_one_of_its_days() -> None:
    week = [
        {"start": "PT8H", "occurence": {"day": ["Mon"]}},  # next Monday
        {"start": "PT7H", "occurence": {"day": ["Thu"]}, "enabled": False},
        {"start": "PT9H", "occurence": {"day": ["Fri", "Sat"]}},  # tomorrow
        {"start": "PT5H", "occurence": {"day": ["Thu"]}},  # passed today: next week
    ]
    found = programs.next_start(week, THURSDAY)
    assert found is not None
    assert found[0] == datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    assert found[1] is week[2]
    every_day = [{"start": "PT6H"}]  # no weekdays: every day, and strictly after
    assert programs.next_start(every_day, THURSDAY) == (THURSDAY + timedelta(days=1), every_day[0])


def test_a_preconditioning_program_wakes_the_sleeping_car_on_its_day_and_starts() -> None:
    vehicle, clock = car()
    command(vehicle, Action.PRECONDITIONING, climate_program("PT7H", ["Thu"]))
    fall_asleep(vehicle, clock)
    assert next_timer(vehicle) == THURSDAY + timedelta(hours=1)
    clock.now = THURSDAY + timedelta(hours=1)
    assert Connect() in vehicle.tick(clock())
    assert vehicle.mode is Mode.AWAKE
    climate = vehicle.status()["preconditioning"]["airConditioning"]
    assert climate["status"] == "Enabled"
    assert climate["startingCause"] == "Scheduled"
    clock.advance(600)
    vehicle.tick(clock())
    assert vehicle.status()["preconditioning"]["airConditioning"]["status"] == "Finished"


def test_a_program_for_another_day_or_disabled_does_not_run_today() -> None:
    vehicle, clock = car()
    command(vehicle, Action.PRECONDITIONING, climate_program("PT7H", ["Fri"]))
    fall_asleep(vehicle, clock)
    assert next_timer(vehicle) == THURSDAY + timedelta(days=1, hours=1)
    clock.now = THURSDAY + timedelta(hours=1)
    assert vehicle.tick(clock()) == [Timer(THURSDAY + timedelta(days=1, hours=1))]
    assert vehicle.mode is Mode.ASLEEP

    vehicle, clock = car()
    command(vehicle, Action.PRECONDITIONING, climate_program("PT7H", ["Thu"], enabled=False))
    fall_asleep(vehicle, clock)
    assert next_timer(vehicle) is None  # asleep, with nothing to wake for
    clock.now = THURSDAY + timedelta(hours=1)
    vehicle.tick(clock())
    assert vehicle.mode is Mode.ASLEEP
    assert vehicle.status()["preconditioning"]["airConditioning"]["status"] == "Disabled"


def test_a_program_set_for_a_moment_already_past_waits_for_its_next_day() -> None:
    vehicle, clock = car()
    clock.advance(300)  # 06:05, the car has not looked at its programs since 06:00
    command(vehicle, Action.PRECONDITIONING, climate_program("PT6H2M", ["Thu", "Fri"]))
    clock.advance(1)
    vehicle.tick(clock())
    assert vehicle.status()["preconditioning"]["airConditioning"]["status"] == "Disabled"
    fall_asleep(vehicle, clock)
    assert next_timer(vehicle) == THURSDAY + timedelta(days=1, minutes=2)


def test_a_charging_program_charges_a_plugged_car_within_its_window() -> None:
    vehicle, clock = car()
    vehicle.plug()
    command(
        vehicle,
        Action.CHARGING,
        {"schedule": {"programs": [{"start": "PT8H", "end": "PT8H30M", "enabled": True}]}},
    )
    fall_asleep(vehicle, clock)
    assert next_timer(vehicle) == THURSDAY + timedelta(hours=2)
    clock.now = THURSDAY + timedelta(hours=2)
    assert Connect() in vehicle.tick(clock())
    assert vehicle.state.charging_now
    before = vehicle.state.electric_percent
    clock.advance(1800)
    vehicle.tick(clock())
    assert vehicle.state.charging.status == "Stopped"
    assert vehicle.state.electric_percent > before


def test_an_unplugged_car_ignores_its_charging_programs() -> None:
    vehicle, clock = car()
    command(vehicle, Action.CHARGING, {"schedule": {"programs": [{"start": "PT8H"}]}})
    fall_asleep(vehicle, clock)
    clock.now = THURSDAY + timedelta(hours=2)
    vehicle.tick(clock())
    assert vehicle.mode is Mode.ASLEEP
    assert not vehicle.state.charging_now
