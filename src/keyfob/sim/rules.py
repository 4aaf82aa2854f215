"""Whether a simulated vehicle refuses, skips or performs a command: pure functions of its state.

The order and the rules are the table in ``keyfob.sim.vehicle``'s docstring; a test walks that
table. Policy refusals come first (the car will not even consider the command), then
``alreadyDone`` (nothing to do), then refusals that depend on the situation of the moment.
"""

from __future__ import annotations

from keyfob.link.protocol import Action, Outcome, WireCause, WireFeedback
from keyfob.sim.config import SimConfig
from keyfob.sim.params import (
    ChargingRequest,
    ClimateRequest,
    DoorRequest,
    NavigationRequest,
    Request,
    StolenRequest,
    SwitchRequest,
)
from keyfob.sim.state import VehicleState, Verdict

CANCELLABLE = frozenset(
    {
        Action.DOOR,
        Action.HORN,
        Action.LIGHTS,
        Action.PRECONDITIONING,
        Action.CHARGING,
        Action.NAVIGATION,
    }
)
PRIVACY_EXEMPT = frozenset({Action.STOLEN, Action.IMMOBILIZATION})


def refused(cause: WireCause) -> Verdict:
    return Verdict(Outcome.FAILED, cause)


ALREADY_DONE = Verdict(Outcome.ALREADY_DONE)
SUCCESS = Verdict(Outcome.SUCCESS)


def decide(state: VehicleState, action: Action, request: Request, config: SimConfig) -> Verdict:
    """The vehicle's answer to a well-formed command it is not too busy to consider."""
    cause = policy_refusal(state, action, request)
    if cause is not None:
        return refused(cause)
    if already_done(state, action, request):
        return ALREADY_DONE
    cause = situational_refusal(state, action, request, config)
    if cause is not None:
        return refused(cause)
    if isinstance(request, DoorRequest) and request.lock and request.forced:
        blacklisted = state.key_inside
        feedback = WireFeedback.KEY_BLACKLISTED if blacklisted else WireFeedback.KEY_NOT_BLACKLISTED
        return Verdict(Outcome.SUCCESS, feedback=feedback)
    return SUCCESS


def fitted(state: VehicleState, action: Action) -> bool:
    if action is Action.CHARGING:
        return state.traits.chargeable
    if action is Action.PRECONDITIONING:
        return state.traits.climate
    return True


def immobilizes(action: Action, request: Request) -> bool:
    if isinstance(request, SwitchRequest) and action is Action.IMMOBILIZATION:
        return request.on
    return isinstance(request, StolenRequest) and request.immobilize is True


def policy_refusal(state: VehicleState, action: Action, request: Request) -> WireCause | None:
    if not fitted(state, action):
        return WireCause.WRONG_COMMAND
    if state.privacy == "Full" and action not in PRIVACY_EXEMPT:
        return WireCause.PRIVACY_LEVEL
    unlocking = isinstance(request, DoorRequest) and not request.lock
    stolen_forbids = unlocking or action in (
        Action.PRECONDITIONING,
        Action.CHARGING,
        Action.NAVIGATION,
    )
    if state.theft.stolen and stolen_forbids:
        return WireCause.STOLEN_STATE
    in_use_forbids = immobilizes(action, request) or action in (
        Action.DOOR,
        Action.HORN,
        Action.LIGHTS,
        Action.PRECONDITIONING,
        Action.CHARGING,
    )
    if state.ignition != "Stop" and in_use_forbids:
        return WireCause.VEHICLE_IN_USE
    return None


def already_done(state: VehicleState, action: Action, request: Request) -> bool:
    match request:
        case DoorRequest():
            return request.lock == state.locked
        case SwitchRequest() if action is Action.IMMOBILIZATION:
            return request.on == state.immobilized
        case NavigationRequest():
            return request.positions == state.destination
        case StolenRequest():
            return _stolen_noop(state, request)
        case ClimateRequest():
            return _climate_noop(state, request)
        case ChargingRequest():
            return _charging_noop(state, request)
    return False  # horn, lights and wake-up always act


def _stolen_noop(state: VehicleState, request: StolenRequest) -> bool:
    theft = state.theft
    if request.stolen is not None:
        return request.stolen == theft.stolen
    if request.tracking is not None:
        return request.tracking == (theft.running_period, theft.shutdown_period)
    return request.immobilize == state.immobilized


def _climate_noop(state: VehicleState, request: ClimateRequest) -> bool:
    if request.immediate is not None and request.immediate != state.climate_running:
        return False
    programs = state.climate.programs
    return all(programs.get(change.slot) == change.program for change in request.programs)


def _charging_noop(state: VehicleState, request: ChargingRequest) -> bool:
    charging = state.charging
    if request.immediate is not None and request.immediate != state.charging_now:
        return False
    if request.sets_schedule and (
        request.next_delayed_time != charging.next_delayed_time
        or (request.programs or ()) != charging.programs
    ):
        return False
    return (request.level is None or request.level == charging.power_level) and (
        request.target is None or request.target == charging.target
    )


def situational_refusal(
    state: VehicleState, action: Action, request: Request, config: SimConfig
) -> WireCause | None:
    low_voltage = state.voltage < config.low_voltage
    match request:
        case DoorRequest(lock=True):
            if state.open:
                return WireCause.DOORS_OPEN
            if state.key_inside and not request.forced:
                return WireCause.KEY_INSIDE
        case SwitchRequest(on=True) if action in (Action.HORN, Action.LIGHTS) and low_voltage:
            return WireCause.BATTERY_LEVEL
        case ClimateRequest(immediate=True):
            plugged_in = state.charging.plugged and not state.charging.charger_faulty
            if low_voltage or (
                state.climate_energy_percent < config.low_traction_percent and not plugged_in
            ):
                return WireCause.BATTERY_LEVEL
            if state.open:
                return WireCause.DOORS_OPEN
        case ChargingRequest(immediate=True):
            if not state.charging.plugged:
                return WireCause.CHARGING_SYSTEM_ERROR
            if state.charging.charger_faulty:
                return WireCause.CHARGER_ERROR
    if immobilizes(action, request) and not state.locked:
        return WireCause.NOT_LOCKED
    return None
