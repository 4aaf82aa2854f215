"""The simulated vehicle's answers: every action, every refusal of the table, in order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keyfob.kit.clock import FakeClock
from keyfob.link.protocol import (
    Ack,
    AckState,
    Action,
    Outcome,
    Result,
    Telemetry,
    WireCause,
    WireFeedback,
    new_command,
)
from keyfob.link.topics import Channel
from keyfob.sim.config import SimConfig
from keyfob.sim.outputs import Output, Send
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization

VIN = "VF3SIMVEHICLE0001"
LOCK = (Action.DOOR, {"state": "Locked"})
UNLOCK = (Action.DOOR, {"state": "Unlocked"})
HORN = (Action.HORN, {"state": "Activated"})
CLIMATE_ON = (Action.PRECONDITIONING, {"airConditioning": {"immediate": True}})
CHARGE = (Action.CHARGING, {"immediate": True})
IMMOBILIZE = (Action.IMMOBILIZATION, {"activate": True})
DELETE_SLOT_2 = {"slot": 2, "actionsType": "Delete", "start": "PT0S"}
PARIS = {"positions": [{"type": "Point", "coordinates": [2.3522, 48.8566]}]}


def car(motorization: Motorization = Motorization.ELECTRIC, **config: Any) -> SimVehicle:
    clock = FakeClock()
    vehicle = SimVehicle(
        VIN, motorization, seed=1, clock=clock, config=SimConfig(speed=0, **config)
    )
    vehicle.connected(clock())
    return vehicle


def later(vehicle: SimVehicle, seconds: float) -> None:
    """Move the vehicle's fake clock forward."""
    clock = vehicle.clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds)


def issue(vehicle: SimVehicle, action: Action, params: dict[str, Any]) -> list[Output]:
    now = vehicle.clock()
    return vehicle.handle_command(
        new_command(action, params, now=now, ttl=timedelta(minutes=1)), now
    )


def sends(outputs: list[Output], channel: Channel) -> list[Any]:
    return [o.message for o in outputs if isinstance(o, Send) and o.channel is channel]


def answer(vehicle: SimVehicle, command: tuple[Action, dict[str, Any]]) -> Result:
    results = sends(issue(vehicle, *command), Channel.RESULT)
    assert len(results) == 1
    result: Result = results[0]
    return result


def verdict(vehicle: SimVehicle, command: tuple[Action, dict[str, Any]]) -> object:
    result = answer(vehicle, command)
    return result.cause or result.outcome


def test_a_performed_command_is_acked_twice_then_reported_then_answered() -> None:
    vehicle = car()
    outputs = issue(vehicle, *UNLOCK)
    kinds = [(o.channel, type(o.message)) for o in outputs if isinstance(o, Send)]
    assert kinds == [
        (Channel.ACK, Ack),
        (Channel.ACK, Ack),
        (Channel.STATUS, Telemetry),
        (Channel.RESULT, Result),
    ]
    acks = sends(outputs, Channel.ACK)
    assert [a.state for a in acks] == [AckState.RECEIVED, AckState.EXECUTING]
    status = sends(outputs, Channel.STATUS)[0].status
    assert status["doorsState"]["lockedStates"] == ["Unlocked"]
    assert sends(outputs, Channel.RESULT)[0].outcome is Outcome.SUCCESS


def test_a_refused_command_is_acked_once_and_answered_without_executing() -> None:
    vehicle = car(Motorization.THERMIC)
    outputs = issue(vehicle, *CHARGE)
    assert [a.state for a in sends(outputs, Channel.ACK)] == [AckState.RECEIVED]
    assert sends(outputs, Channel.STATUS) == []
    result = sends(outputs, Channel.RESULT)[0]
    assert (result.outcome, result.cause) == (Outcome.FAILED, WireCause.WRONG_COMMAND)


def test_at_realistic_speed_the_result_waits_for_the_action_to_finish() -> None:
    clock = FakeClock()
    vehicle = SimVehicle(VIN, Motorization.ELECTRIC, seed=1, clock=clock, config=SimConfig())
    outputs = issue(vehicle, *UNLOCK)
    assert sends(outputs, Channel.RESULT) == []
    clock.advance(2.9)
    assert sends(vehicle.tick(clock()), Channel.RESULT) == []
    clock.advance(0.2)
    assert sends(vehicle.tick(clock()), Channel.RESULT)[0].outcome is Outcome.SUCCESS


# -- the refusal table, row by row ----------------------------------------------------------


def test_1_more_than_the_allowed_commands_per_window_are_refused() -> None:
    vehicle = car(max_commands=3, command_window=60)
    assert [verdict(vehicle, HORN) for _ in range(3)] == [Outcome.SUCCESS] * 3
    assert verdict(vehicle, HORN) is WireCause.TOO_MANY_REQUESTS
    later(vehicle, 61)
    assert verdict(vehicle, HORN) is Outcome.SUCCESS


@pytest.mark.parametrize(
    ("action", "params", "path"),
    [
        (Action.DOOR, {"state": "Open"}, "door.state"),
        (Action.DOOR, {}, "door.state: required"),
        (Action.HORN, {"state": True}, "horn.state"),
        (Action.LIGHTS, {"on": "yes"}, "lights.on"),
        (Action.WAKE_UP, {"action": "Sleep"}, "wakeUp.action"),
        (Action.NAVIGATION, {"positions": []}, "navigation.positions"),
        (
            Action.NAVIGATION,
            {"positions": [{"type": "Point", "coordinates": [48.8, 200.0]}]},
            "navigation.positions[0].coordinates",
        ),
        (Action.STOLEN, {"stolen": True, "trackingPeriod": {}}, "stolen: expected exactly one"),
        (Action.STOLEN, {"trackingPeriod": {"running": 2, "shutdown": 60}}, "running"),
        (Action.IMMOBILIZATION, {"activate": 1}, "immobilization.activate"),
        (Action.PRECONDITIONING, {"airConditioning": {}}, "expected immediate or programs"),
        (
            Action.PRECONDITIONING,
            {"airConditioning": {"programs": [{"slot": 5, "start": "PT1H"}]}},
            "programs[0].slot",
        ),
        (Action.CHARGING, {}, "charging: expected immediate, schedule or preferences"),
        (
            Action.CHARGING,
            {"immediate": True, "preferences": {"level": "Level2"}},
            "charging.preferences: cannot be combined",
        ),
        (Action.CHARGING, {"preferences": {"level": "Level9"}}, "preferences.level"),
    ],
)
def test_2_unreadable_params_are_a_wrong_command(
    action: Action, params: dict[str, Any], path: str
) -> None:
    vehicle = car()
    assert verdict(vehicle, (action, params)) is WireCause.WRONG_COMMAND
    assert vehicle.last_unreadable is not None
    assert path in vehicle.last_unreadable


@pytest.mark.parametrize(
    ("motorization", "command", "expected"),
    [
        (Motorization.THERMIC, CHARGE, WireCause.WRONG_COMMAND),
        (Motorization.HYDROGEN, CHARGE, WireCause.WRONG_COMMAND),
        (Motorization.THERMIC, CLIMATE_ON, WireCause.WRONG_COMMAND),
        (Motorization.HYDROGEN, CLIMATE_ON, Outcome.SUCCESS),
        (Motorization.HYBRID, CLIMATE_ON, Outcome.SUCCESS),
        (Motorization.THERMIC, HORN, Outcome.SUCCESS),
    ],
)
def test_3_actions_the_motorization_lacks_are_a_wrong_command(
    motorization: Motorization, command: tuple[Action, dict[str, Any]], expected: object
) -> None:
    assert verdict(car(motorization), command) is expected


def test_4_the_same_action_twice_at_once_is_too_many_requests() -> None:
    clock = FakeClock()
    config = SimConfig(refusal_seconds=0)
    vehicle = SimVehicle(VIN, Motorization.ELECTRIC, seed=1, clock=clock, config=config)
    issue(vehicle, *UNLOCK)
    assert verdict(vehicle, LOCK) is WireCause.TOO_MANY_REQUESTS
    clock.advance(1)
    assert sends(issue(vehicle, *HORN), Channel.ACK)[-1].state is AckState.EXECUTING


def test_5_full_privacy_refuses_all_but_the_security_actions() -> None:
    vehicle = car()
    vehicle.set_privacy("Full")
    assert verdict(vehicle, HORN) is WireCause.PRIVACY_LEVEL
    assert verdict(vehicle, (Action.WAKE_UP, {})) is WireCause.PRIVACY_LEVEL
    assert verdict(vehicle, IMMOBILIZE) is Outcome.SUCCESS
    assert verdict(vehicle, (Action.STOLEN, {"stolen": True})) is Outcome.SUCCESS


def test_6_a_stolen_car_refuses_what_would_help_a_thief() -> None:
    vehicle = car()
    assert verdict(vehicle, (Action.STOLEN, {"stolen": True})) is Outcome.SUCCESS
    assert verdict(vehicle, UNLOCK) is WireCause.STOLEN_STATE
    assert verdict(vehicle, CLIMATE_ON) is WireCause.STOLEN_STATE
    assert verdict(vehicle, (Action.NAVIGATION, PARIS)) is WireCause.STOLEN_STATE
    assert verdict(vehicle, HORN) is Outcome.SUCCESS
    assert verdict(vehicle, LOCK) is Outcome.ALREADY_DONE


def test_7_a_car_in_use_refuses_doors_horn_climate_and_immobilization() -> None:
    vehicle = car()
    vehicle.set_ignition(True)
    for command in (LOCK, UNLOCK, HORN, (Action.LIGHTS, {"on": True}), CLIMATE_ON, IMMOBILIZE):
        assert verdict(vehicle, command) is WireCause.VEHICLE_IN_USE
    assert verdict(vehicle, (Action.STOLEN, {"immobilization": {"activate": True}})) is (
        WireCause.VEHICLE_IN_USE
    )
    assert verdict(vehicle, (Action.NAVIGATION, PARIS)) is Outcome.SUCCESS
    assert verdict(vehicle, (Action.WAKE_UP, {"action": "WakeUp"})) is Outcome.SUCCESS


@pytest.mark.parametrize(
    "command",
    [
        LOCK,
        (Action.IMMOBILIZATION, {"activate": False}),
        (Action.STOLEN, {"stolen": False}),
        (Action.STOLEN, {"trackingPeriod": {"running": 30, "shutdown": 300}}),
        (Action.CHARGING, {"immediate": False}),
        (Action.PRECONDITIONING, {"airConditioning": {"immediate": False}}),
        (Action.PRECONDITIONING, {"airConditioning": {"programs": [DELETE_SLOT_2]}}),
        (Action.CHARGING, {"preferences": {"level": "Level3", "type": "Full"}}),
    ],
)
def test_8_a_state_that_already_holds_is_already_done(
    command: tuple[Action, dict[str, Any]],
) -> None:
    assert verdict(car(), command) is Outcome.ALREADY_DONE


def test_8_repeating_an_order_is_already_done_but_horn_and_lights_always_act() -> None:
    vehicle = car(max_commands=100)
    assert verdict(vehicle, UNLOCK) is Outcome.SUCCESS
    assert verdict(vehicle, UNLOCK) is Outcome.ALREADY_DONE
    assert verdict(vehicle, (Action.NAVIGATION, PARIS)) is Outcome.SUCCESS
    assert verdict(vehicle, (Action.NAVIGATION, PARIS)) is Outcome.ALREADY_DONE
    assert verdict(vehicle, CLIMATE_ON) is Outcome.SUCCESS
    assert verdict(vehicle, CLIMATE_ON) is Outcome.ALREADY_DONE
    vehicle.plug()
    assert verdict(vehicle, CHARGE) is Outcome.SUCCESS
    assert verdict(vehicle, CHARGE) is Outcome.ALREADY_DONE
    assert verdict(vehicle, HORN) is Outcome.SUCCESS
    assert verdict(vehicle, HORN) is Outcome.SUCCESS
    assert verdict(vehicle, (Action.LIGHTS, {"on": True})) is Outcome.SUCCESS
    assert verdict(vehicle, (Action.LIGHTS, {"on": True})) is Outcome.SUCCESS


def test_9_locking_with_a_door_open_is_refused() -> None:
    vehicle = car()
    answer(vehicle, UNLOCK)
    vehicle.open_door("Trunk")
    assert verdict(vehicle, LOCK) is WireCause.DOORS_OPEN
    vehicle.close_door("Trunk")
    assert verdict(vehicle, LOCK) is Outcome.SUCCESS


def test_10_the_key_inside_blocks_a_lock_unless_forced_which_blacklists_it() -> None:
    vehicle = car()
    answer(vehicle, UNLOCK)
    vehicle.set_key_inside()
    assert verdict(vehicle, LOCK) is WireCause.KEY_INSIDE
    forced = answer(vehicle, (Action.DOOR, {"state": "Locked", "forced": True}))
    assert (forced.outcome, forced.feedback) == (Outcome.SUCCESS, WireFeedback.KEY_BLACKLISTED)
    answer(vehicle, UNLOCK)
    vehicle.set_key_inside(False)
    forced = answer(vehicle, (Action.DOOR, {"state": "Locked", "forced": True}))
    assert forced.feedback is WireFeedback.KEY_NOT_BLACKLISTED
    assert answer(vehicle, UNLOCK).feedback is None


def test_11_a_weak_12_volt_battery_refuses_horn_lights_and_climate() -> None:
    vehicle = car()
    vehicle.set_voltage(11.6)
    assert verdict(vehicle, HORN) is WireCause.BATTERY_LEVEL
    assert verdict(vehicle, (Action.LIGHTS, {"on": True})) is WireCause.BATTERY_LEVEL
    assert verdict(vehicle, CLIMATE_ON) is WireCause.BATTERY_LEVEL
    assert verdict(vehicle, (Action.HORN, {"state": "Unactivated"})) is Outcome.SUCCESS
    assert verdict(vehicle, UNLOCK) is Outcome.SUCCESS


def test_12_a_low_traction_battery_refuses_climate_unless_plugged() -> None:
    vehicle = car()
    vehicle.set_battery_level(10)
    assert verdict(vehicle, CLIMATE_ON) is WireCause.BATTERY_LEVEL
    vehicle.plug()
    assert verdict(vehicle, CLIMATE_ON) is Outcome.SUCCESS


def test_13_climate_with_a_door_open_is_refused() -> None:
    vehicle = car()
    vehicle.open_door("Driver")
    assert verdict(vehicle, CLIMATE_ON) is WireCause.DOORS_OPEN


def test_14_and_15_charging_needs_a_cable_and_a_working_station() -> None:
    vehicle = car()
    assert verdict(vehicle, CHARGE) is WireCause.CHARGING_SYSTEM_ERROR
    vehicle.plug()
    vehicle.set_charger_faulty()
    assert verdict(vehicle, CHARGE) is WireCause.CHARGER_ERROR
    vehicle.set_charger_faulty(False)
    assert verdict(vehicle, CHARGE) is Outcome.SUCCESS


def test_16_immobilizing_an_unlocked_car_is_refused() -> None:
    vehicle = car()
    answer(vehicle, UNLOCK)
    assert verdict(vehicle, IMMOBILIZE) is WireCause.NOT_LOCKED
    assert verdict(vehicle, (Action.STOLEN, {"immobilization": {"activate": True}})) is (
        WireCause.NOT_LOCKED
    )


def test_an_armed_driver_cancel_spoils_the_next_cancellable_action_only() -> None:
    vehicle = car()
    vehicle.cancel_next_command()
    assert verdict(vehicle, IMMOBILIZE) is Outcome.SUCCESS  # security actions cannot be cancelled
    outputs = issue(vehicle, *UNLOCK)
    assert sends(outputs, Channel.RESULT)[0].cause is WireCause.CANCELED_BY_DRIVER
    assert sends(outputs, Channel.STATUS) == []
    assert vehicle.status()["doorsState"]["lockedStates"] == ["Locked"]
    assert verdict(vehicle, (Action.IMMOBILIZATION, {"activate": False})) is Outcome.SUCCESS
    assert verdict(vehicle, UNLOCK) is Outcome.SUCCESS


# -- effects visible in the status ------------------------------------------------------------


def test_charging_commands_change_the_charging_status() -> None:
    vehicle = car()
    vehicle.plug()
    answer(vehicle, (Action.CHARGING, {"preferences": {"level": "Level5", "type": "Partial"}}))
    answer(vehicle, CHARGE)
    charging = vehicle.status()["energies"][0]["extension"]["electric"]["charging"]
    assert charging["plugged"] is True
    assert charging["status"] == "InProgress"
    assert charging["chargingPowerLevel"] == "Level5"
    assert charging["chargingMode"] == "Quick"
    assert charging["type"] == "Partial"
    answer(vehicle, (Action.CHARGING, {"immediate": False}))
    charging = vehicle.status()["energies"][0]["extension"]["electric"]["charging"]
    assert charging["status"] == "Stopped"
    program = {"slot": 1, "start": "PT22H", "end": "PT6H", "occurence": {"day": ["Mon"]}}
    schedule = (Action.CHARGING, {"schedule": {"programs": [program]}})
    assert answer(vehicle, schedule).outcome is Outcome.SUCCESS
    assert answer(vehicle, schedule).outcome is Outcome.ALREADY_DONE
    charging = vehicle.status()["energies"][0]["extension"]["electric"]["charging"]
    assert charging["schedule"]["programs"][0]["start"] == "PT22H"


def test_preconditioning_programs_fill_their_slots() -> None:
    vehicle = car(Motorization.HYBRID)
    program = {
        "slot": 3,
        "actionsType": "Set",
        "enabled": True,
        "start": "PT7H30M",
        "occurence": {"day": ["Mon", "Fri"]},
    }
    request = (Action.PRECONDITIONING, {"airConditioning": {"programs": [program]}})
    assert answer(vehicle, request).outcome is Outcome.SUCCESS
    assert answer(vehicle, request).outcome is Outcome.ALREADY_DONE
    air = vehicle.status()["preconditioning"]["airConditioning"]
    assert air["programs"] == [
        {
            "slot": 3,
            "enabled": True,
            "recurrence": "Daily",
            "start": "PT7H30M",
            "occurence": {"day": ["Mon", "Fri"]},
        }
    ]
    delete = {"slot": 3, "actionsType": "Delete", "start": "PT0S"}
    answer(vehicle, (Action.PRECONDITIONING, {"airConditioning": {"programs": [delete]}}))
    assert "programs" not in vehicle.status()["preconditioning"]["airConditioning"]


def test_preconditioning_runs_then_finishes_by_itself() -> None:
    vehicle = car(climate_run=600)
    answer(vehicle, CLIMATE_ON)
    air = vehicle.status()["preconditioning"]["airConditioning"]
    assert (air["status"], air["startingCause"]) == ("Enabled", "Immediate")
    later(vehicle, 601)
    telemetry = sends(vehicle.tick(vehicle.clock()), Channel.STATUS)
    assert telemetry[-1].status["preconditioning"]["airConditioning"]["status"] == "Finished"


def test_stolen_declaration_is_reported_with_its_episode() -> None:
    vehicle = car()
    answer(vehicle, (Action.STOLEN, {"stolen": True}))
    stolen = vehicle.status()["stolen"]
    assert stolen["state"] is True
    assert stolen["startPosition"]["type"] == "Feature"
    assert "endAt" not in stolen
    answer(vehicle, (Action.STOLEN, {"trackingPeriod": {"running": 10, "shutdown": 90}}))
    assert (vehicle.state.theft.running_period, vehicle.state.theft.shutdown_period) == (10, 90)
    answer(vehicle, (Action.STOLEN, {"stolen": False}))
    ended = vehicle.status()["stolen"]
    assert ended["state"] is False
    assert ended["id"] == stolen["id"]
    assert "endAt" in ended


def test_navigation_immobilization_horn_and_wake_up_succeed() -> None:
    vehicle = car()
    assert answer(vehicle, (Action.NAVIGATION, PARIS)).outcome is Outcome.SUCCESS
    assert vehicle.state.destination == ((2.3522, 48.8566),)
    assert answer(vehicle, IMMOBILIZE).outcome is Outcome.SUCCESS
    assert vehicle.state.immobilized
    vehicle.set_ignition(True)
    assert vehicle.status()["ignition"]["type"] == "StartUp"  # immobilized: it cannot start
    assert answer(vehicle, (Action.WAKE_UP, {})).outcome is Outcome.SUCCESS
