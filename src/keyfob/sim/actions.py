"""What performing a command changes in a simulated vehicle's state.

Only called for commands the rules accepted, at the moment the vehicle finishes them; the new
state is then published as telemetry, so ``alreadyDone`` for the next command is decided from
what the car really did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from keyfob.link.protocol import Action
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
from keyfob.sim.state import VehicleState


def apply(
    state: VehicleState,
    action: Action,
    request: Request,
    *,
    now: datetime,
    config: SimConfig,
    new_id: Callable[[], str],
) -> None:
    match request:
        case DoorRequest():
            state.locked = request.lock
        case SwitchRequest():
            _switch(state, action, request.on)
        case NavigationRequest():
            state.destination = request.positions
        case StolenRequest():
            _stolen(state, request, now, new_id)
        case ClimateRequest():
            _climate(state, request, now, config)
        case ChargingRequest():
            _charging(state, request, now)
        case _:
            pass  # wake-up: being awake and reporting is the whole effect


def _switch(state: VehicleState, action: Action, on: bool) -> None:
    if action is Action.HORN:
        state.horn_sounding = on
    elif action is Action.LIGHTS:
        state.lights_blinking = on
    else:
        state.immobilized = on


def _stolen(
    state: VehicleState, request: StolenRequest, now: datetime, new_id: Callable[[], str]
) -> None:
    theft = state.theft
    here = (state.longitude, state.latitude)
    if request.stolen is True:
        theft.stolen, theft.episode, theft.started_at = True, new_id(), now
        theft.start_position, theft.ended_at, theft.end_position = here, None, None
    elif request.stolen is False:
        theft.stolen, theft.ended_at, theft.end_position = False, now, here
    if request.tracking is not None:
        theft.running_period, theft.shutdown_period = request.tracking
    if request.immobilize is not None:
        state.immobilized = request.immobilize


def _climate(
    state: VehicleState, request: ClimateRequest, now: datetime, config: SimConfig
) -> None:
    climate = state.climate
    if request.immediate is True:
        climate.status, climate.starting_cause = "Enabled", "Immediate"
        climate.running_until = now + timedelta(seconds=config.climate_run)
    elif request.immediate is False and state.climate_running:
        climate.status, climate.starting_cause, climate.running_until = "Disabled", None, None
    if request.programs:
        state.programs_seen_at = now  # a program set for a moment already past waits a day
    for change in request.programs:
        if change.program is None:
            climate.programs.pop(change.slot, None)
        else:
            climate.programs[change.slot] = change.program


def _charging(state: VehicleState, request: ChargingRequest, now: datetime) -> None:
    charging = state.charging
    if request.immediate is True:
        charging.status = "InProgress"
    elif request.immediate is False and state.charging_now:
        charging.status = "Stopped"
    if request.sets_schedule:
        charging.next_delayed_time = request.next_delayed_time
        charging.programs = request.programs or ()
        state.programs_seen_at = now  # a program set for a moment already past waits a day
    if request.level is not None:
        charging.power_level = request.level
    if request.target is not None:
        charging.target = request.target
