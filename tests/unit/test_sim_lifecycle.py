"""The simulated vehicle over time: sleeping, waking, going offline, reporting, draining."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from keyfob.kit.clock import FakeClock, isoformat
from keyfob.link.protocol import (
    Ack,
    AckState,
    Action,
    Command,
    Outcome,
    Presence,
    PresenceState,
    Result,
    new_command,
)
from keyfob.link.topics import Channel
from keyfob.sim.config import SimConfig
from keyfob.sim.outputs import Connect, Disconnect, Output, Send, Timer
from keyfob.sim.state import Mode
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization

VIN = "VF3LIFECYCLE00001"


def car(*, awake: bool = True, **config: Any) -> tuple[SimVehicle, FakeClock]:
    clock = FakeClock()
    settings = {"speed": 0, **config}
    vehicle = SimVehicle(
        VIN, Motorization.ELECTRIC, seed=4, clock=clock, config=SimConfig(**settings), awake=awake
    )
    if awake:
        vehicle.connected(clock())
    return vehicle, clock


def sends(outputs: list[Output], channel: Channel) -> list[Any]:
    return [o.message for o in outputs if isinstance(o, Send) and o.channel is channel]


def timer(outputs: list[Output]) -> Timer:
    timers = [o for o in outputs if isinstance(o, Timer)]
    assert len(timers) == 1
    return timers[0]


def door(clock: FakeClock, state: str = "Unlocked", ttl: float = 60) -> Command:
    return new_command(Action.DOOR, {"state": state}, now=clock(), ttl=timedelta(seconds=ttl))


def test_an_awake_vehicle_connects_then_announces_itself() -> None:
    clock = FakeClock()
    vehicle = SimVehicle(VIN, Motorization.HYBRID, clock=clock, config=SimConfig(speed=0))
    assert isinstance(vehicle.start(clock())[0], Connect)
    outputs = vehicle.connected(clock())
    presence = [o for o in outputs if isinstance(o, Send) and o.channel is Channel.PRESENCE]
    assert presence[0].retain is True
    assert presence[0].message == Presence(PresenceState.ONLINE, clock())
    assert len(sends(outputs, Channel.STATUS)) == 1
    asleep = SimVehicle(VIN, Motorization.HYBRID, clock=clock, awake=False)
    assert not any(isinstance(o, Connect) for o in asleep.start(clock()))


def test_it_falls_asleep_after_the_awake_window_announcing_it_first() -> None:
    vehicle, clock = car()
    assert timer(vehicle.tick(clock())).at == clock() + timedelta(seconds=180)
    clock.advance(179)
    assert not any(isinstance(o, Disconnect) for o in vehicle.tick(clock()))
    clock.advance(1)
    outputs = vehicle.tick(clock())
    presence = sends(outputs, Channel.PRESENCE)
    assert [p.state for p in presence] == [PresenceState.ASLEEP]
    assert outputs.index(next(o for o in outputs if isinstance(o, Disconnect))) > 0
    assert Disconnect(graceful=True) in outputs
    assert vehicle.mode is Mode.ASLEEP


def test_each_message_buys_three_more_minutes_up_to_thirty() -> None:
    vehicle, clock = car(max_commands=100)
    clock.advance(60)
    vehicle.handle_command(door(clock), clock())
    assert vehicle.state.awake_until == clock() + timedelta(seconds=300)  # 120 left + 180
    for _ in range(20):
        vehicle.handle_command(door(clock), clock())
    assert vehicle.state.awake_until == clock() + timedelta(seconds=1800)


def test_a_sleeping_vehicle_hears_no_command() -> None:
    vehicle, clock = car(awake=False)
    outputs = vehicle.handle_command(door(clock), clock())
    assert [o for o in outputs if isinstance(o, Send)] == []
    assert vehicle.state.locked


def test_an_sms_wakes_it_after_the_modem_latency() -> None:
    vehicle, clock = car(awake=False, speed=1.0)
    outputs = vehicle.wake(clock())
    assert not any(isinstance(o, Connect) for o in outputs)
    wake_at = timer(outputs).at
    assert timedelta(seconds=10) <= wake_at - clock() <= timedelta(seconds=20)
    clock.now = wake_at
    assert Connect() in vehicle.tick(clock())
    assert vehicle.mode is Mode.AWAKE
    presence = sends(vehicle.connected(clock()), Channel.PRESENCE)
    assert presence[0].state is PresenceState.ONLINE


def test_at_speed_zero_it_wakes_at_once() -> None:
    vehicle, clock = car(awake=False)
    assert timer(vehicle.wake(clock())).at == clock()
    assert Connect() in vehicle.tick(clock())


def test_a_flat_12_volt_battery_cannot_wake_and_weeks_of_sleep_drain_it() -> None:
    vehicle, clock = car(awake=False)
    clock.advance(45 * 86_400)  # 45 days parked
    assert vehicle.wake(clock()) == []
    assert vehicle.mode is Mode.ASLEEP
    assert vehicle.state.voltage < vehicle.config.dead_voltage
    assert vehicle.counters["wake_ignored_flat_battery"] == 1


def test_an_expired_command_is_neither_executed_nor_answered() -> None:
    vehicle, clock = car()
    stale = door(clock, ttl=5)
    clock.advance(6)
    outputs = vehicle.handle_command(stale, clock())
    assert [o for o in outputs if isinstance(o, Send)] == []
    assert vehicle.state.locked
    assert vehicle.counters["expired_ignored"] == 1


def test_a_repeated_command_id_is_answered_again_not_executed_again() -> None:
    vehicle, clock = car()
    command = door(clock)
    first = sends(vehicle.handle_command(command, clock()), Channel.RESULT)
    vehicle.state.locked = True  # the driver locked it with the key meanwhile
    again = vehicle.handle_command(command, clock())
    assert sends(again, Channel.RESULT) == first
    assert sends(again, Channel.ACK) == []
    assert vehicle.state.locked


def test_a_repeated_command_still_executing_gets_its_ack_again() -> None:
    vehicle, clock = car(speed=1.0)
    command = door(clock)
    vehicle.handle_command(command, clock())
    clock.advance(1)
    again = vehicle.handle_command(command, clock())
    assert sends(again, Channel.ACK) == [Ack(command.id, AckState.EXECUTING, clock())]
    assert sends(again, Channel.RESULT) == []


def test_offline_it_vanishes_keeps_its_results_and_returns() -> None:
    vehicle, clock = car(speed=1.0)
    command = door(clock)
    vehicle.handle_command(command, clock())
    outputs = vehicle.go_offline(60)
    assert Disconnect(graceful=False) in outputs
    clock.advance(5)  # the unlock finishes while offline
    assert sends(vehicle.tick(clock()), Channel.RESULT) == []
    assert not vehicle.state.locked
    clock.advance(56)
    assert Connect() in vehicle.tick(clock())
    back = vehicle.connected(clock())
    assert sends(back, Channel.PRESENCE)[0].state is PresenceState.ONLINE
    results: list[Result] = sends(back, Channel.RESULT)
    assert [(r.id, r.outcome) for r in results] == [(command.id, Outcome.SUCCESS)]


def test_charging_keeps_it_awake_reports_progress_and_finishes_at_its_target() -> None:
    vehicle, clock = car(report_period=60)
    vehicle.plug()
    vehicle.set_battery_level(70)
    for params in ({"preferences": {"type": "Partial"}}, {"immediate": True}):
        command = new_command(Action.CHARGING, params, now=clock(), ttl=timedelta(minutes=1))
        vehicle.handle_command(command, clock())
    reports = []
    for _ in range(45):  # 10 % of 50 kWh at 7.4 kW takes about 41 minutes
        clock.advance(60)
        reports += [t.status["energies"][0] for t in sends(vehicle.tick(clock()), Channel.STATUS)]
    assert len(reports) >= 40
    charging = reports[0]["extension"]["electric"]["charging"]
    assert (charging["status"], charging["remainingTime"]) == ("InProgress", "PT39M")
    levels = [report["level"] for report in reports]
    assert levels == sorted(levels)
    assert levels[-1] == 80.0
    assert vehicle.state.charging.status == "Finished"
    assert reports[-1]["extension"]["electric"]["charging"]["status"] == "Finished"
    clock.advance(180)
    vehicle.tick(clock())
    assert vehicle.mode is Mode.ASLEEP  # charging done, nothing keeps it awake


def test_a_delayed_charge_wakes_the_car_and_starts() -> None:
    vehicle, clock = car()
    vehicle.plug()
    start = clock() + timedelta(hours=2)
    command = new_command(
        Action.CHARGING,
        {"schedule": {"nextDelayedTime": isoformat(start)}},
        now=clock(),
        ttl=timedelta(minutes=1),
    )
    vehicle.handle_command(command, clock())
    telemetry = vehicle.status()["energies"][0]["extension"]["electric"]["charging"]
    assert telemetry["nextDelayedTime"] == "PT2H0M"
    clock.advance(600)
    vehicle.tick(clock())
    assert vehicle.mode is Mode.ASLEEP
    assert timer(vehicle.tick(clock())).at == start
    clock.now = start
    assert Connect() in vehicle.tick(clock())
    assert vehicle.state.charging_now


def test_driving_moves_the_car_and_a_stop_gives_three_minutes() -> None:
    vehicle, clock = car()
    before = vehicle.status()
    vehicle.set_ignition(True)
    clock.advance(600)
    vehicle.tick(clock())
    assert vehicle.mode is Mode.AWAKE
    after = vehicle.status()
    assert after["odometer"]["mileage"] == before["odometer"]["mileage"] + 5.0
    assert after["kinetic"]["moving"] is True
    assert after["lastPosition"] != before["lastPosition"]
    vehicle.set_ignition(False)
    clock.advance(179)
    vehicle.tick(clock())
    modes = [vehicle.mode]
    clock.advance(2)
    vehicle.tick(clock())
    modes.append(vehicle.mode)
    assert modes == [Mode.AWAKE, Mode.ASLEEP]


def test_a_stolen_car_never_sleeps_and_reports_at_its_tracking_period() -> None:
    vehicle, clock = car()
    for params in ({"stolen": True}, {"trackingPeriod": {"running": 10, "shutdown": 120}}):
        command = new_command(Action.STOLEN, params, now=clock(), ttl=timedelta(minutes=1))
        vehicle.handle_command(command, clock())
    reported = []
    for _ in range(60):
        clock.advance(10)
        if sends(vehicle.tick(clock()), Channel.STATUS):
            reported.append(clock())
    assert vehicle.mode is Mode.AWAKE
    gaps = {b - a for a, b in itertools.pairwise(reported)}
    assert gaps == {timedelta(seconds=120)}


def test_a_driver_interaction_wakes_a_sleeping_car() -> None:
    vehicle, _ = car(awake=False)
    outputs = vehicle.open_door("Driver")
    assert outputs[0] == Connect()
    status = sends(outputs, Channel.STATUS)[0].status
    assert {"identifier": "Driver", "state": "Open"} in status["doorsState"]["opening"]
