"""Time passing for a simulated vehicle: batteries drain or charge, climate runs out, it drives.

Coarse on purpose: the numbers only need to move believably and to cross the thresholds the
rules look at (a 12 V battery that runs down over weeks of sleep, a charge that takes hours).
``advance`` is called with the current time before anything else happens to the vehicle.
"""

from __future__ import annotations

import math
from datetime import datetime

from keyfob.sim.state import CONSUMPTION_KWH_PER_KM, POWER_KW, Mode, VehicleState

AWAKE_DRAIN_V_PER_H = 0.08
ASLEEP_DRAIN_V_PER_H = 0.002
RECHARGE_V_PER_H = 0.5
FULL_VOLTAGE = 12.7
FLAT_VOLTAGE = 10.5
CLIMATE_KW = 3.0
HYDROGEN_CLIMATE_PERCENT_PER_H = 0.5
DRIVING_KMH = 30.0


def advance(state: VehicleState, now: datetime) -> bool:
    """Bring ``state`` to ``now``; True when something the status shows changed."""
    hours = (now - state.updated_at).total_seconds() / 3600
    if hours <= 0:
        return False
    state.updated_at = now
    _twelve_volts(state, hours)
    changed = False
    if state.charging_now:
        changed |= _charge(state, hours)
    if state.driving:
        changed |= _drive(state, hours)
    if state.climate_running:
        changed |= _climate(state, hours, now)
    return changed


def _twelve_volts(state: VehicleState, hours: float) -> None:
    if state.driving or state.charging_now:
        state.voltage = min(FULL_VOLTAGE, state.voltage + RECHARGE_V_PER_H * hours)
        return
    drain = ASLEEP_DRAIN_V_PER_H if state.mode is Mode.ASLEEP else AWAKE_DRAIN_V_PER_H
    state.voltage = max(FLAT_VOLTAGE, state.voltage - drain * hours)


def _charge(state: VehicleState, hours: float) -> bool:
    charging = state.charging
    gained_wh = POWER_KW[charging.power_level] * 1000 * hours
    before = state.electric_percent
    after = before + gained_wh / state.traits.battery_wh * 100
    if after >= charging.target_percent:
        state.electric_percent = max(before, charging.target_percent)
        charging.status = "Finished"
    else:
        state.electric_percent = after
    return True


def _drive(state: VehicleState, hours: float) -> bool:
    distance = DRIVING_KMH * hours
    state.odometer_km += distance
    radians = math.radians(state.heading)
    state.latitude += distance / 111.0 * math.cos(radians)
    state.longitude += (
        distance / (111.0 * math.cos(math.radians(state.latitude))) * math.sin(radians)
    )
    traits = state.traits
    electric_km = distance if traits.electric_range_km and state.electric_percent > 0 else 0.0
    if electric_km:
        used_wh = electric_km * CONSUMPTION_KWH_PER_KM * 1000
        state.electric_percent = max(
            0.0, state.electric_percent - used_wh / traits.battery_wh * 100
        )
    elif traits.fuel_range_km:
        state.fuel_percent = max(0.0, state.fuel_percent - distance / traits.fuel_range_km * 100)
    return True


def _climate(state: VehicleState, hours: float, now: datetime) -> bool:
    climate = state.climate
    traits = state.traits
    if traits.chargeable and not state.charging.plugged:
        used = CLIMATE_KW * 1000 * hours / traits.battery_wh * 100
        state.electric_percent = max(0.0, state.electric_percent - used)
    elif not traits.chargeable:  # hydrogen: the fuel cell feeds the climate
        state.fuel_percent = max(0.0, state.fuel_percent - HYDROGEN_CLIMATE_PERCENT_PER_H * hours)
    if climate.running_until is not None and now >= climate.running_until:
        climate.status = "Finished"
        climate.running_until = None
        return True
    return False
