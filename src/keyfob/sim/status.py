"""The status document a simulated vehicle publishes: the contract's ``Status`` shape.

The vehicle fills what it knows; the platform adds what only it knows (``vin``, the top-level
``createdAt``, ``_links``, and ``stolen._links``). Every sub-object carries the time it was
produced. The in-car privacy setting decides what leaves the car:

    privacy None         everything
    privacy Geolocation  everything but ``lastPosition`` (a stolen car still reports where it is)
    privacy Full         only ``privacy`` itself (and ``stolen`` while stolen)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyfob.kit.clock import isoformat
from keyfob.sim.state import CONSUMPTION_KWH_PER_KM, OPENINGS, POWER_KW, VehicleState
from keyfob.vocabulary import Motorization


def build_status(state: VehicleState, now: datetime) -> dict[str, Any]:
    at = isoformat(now)
    doc: dict[str, Any] = {"privacy": {"createdAt": at, "state": state.privacy}}
    if state.theft.episode is not None:
        doc["stolen"] = _stolen(state)
    if state.privacy == "Full":
        return doc
    doc |= {
        "ignition": {"createdAt": at, "type": state.ignition},
        "doorsState": {
            "createdAt": at,
            "lockedStates": ["Locked" if state.locked else "Unlocked"],
            "opening": [
                {"identifier": name, "state": "Open" if name in state.open else "Closed"}
                for name in OPENINGS
            ],
        },
        "battery": {"createdAt": at, "voltage": round(state.voltage, 2)},
        "energies": _energies(state, at, now),
        "odometer": {"createdAt": at, "mileage": round(state.odometer_km, 1)},
        "kinetic": {
            "createdAt": at,
            "moving": state.driving,
            "speed": 30.0 if state.driving else 0.0,
            "acceleration": 0.0,
        },
        "environment": {
            "air": {"createdAt": at, "temp": state.outside_temp},
            "luminosity": {"createdAt": at, "day": 7 <= now.hour < 19},
        },
    }
    if state.traits.climate:
        doc["preconditioning"] = {"airConditioning": _climate(state, at)}
    if state.privacy == "None":
        doc["lastPosition"] = _feature(state.longitude, state.latitude, at, state.heading)
    return doc


def _feature(lon: float, lat: float, at: str, heading: int = 0) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        "properties": {
            "createdAt": at,
            "heading": heading,
            "type": "Acquire",
            "signalQuality": 9,
            "fixStatus": "3D",
        },
    }


def _stolen(state: VehicleState) -> dict[str, Any]:
    theft = state.theft
    assert theft.episode is not None
    assert theft.started_at is not None
    started = isoformat(theft.started_at)
    doc: dict[str, Any] = {
        "id": theft.episode,
        "state": theft.stolen,
        "createdAt": started,
        "startedAt": started,
    }
    if theft.start_position is not None:
        doc["startPosition"] = _feature(*theft.start_position, started)
    if theft.ended_at is not None and theft.end_position is not None:
        ended = isoformat(theft.ended_at)
        doc["endAt"] = ended
        doc["endPosition"] = _feature(*theft.end_position, ended)
    return doc


def _climate(state: VehicleState, at: str) -> dict[str, Any]:
    climate = state.climate
    doc: dict[str, Any] = {"createdAt": at, "status": climate.status}
    if climate.starting_cause is not None:
        doc["startingCause"] = climate.starting_cause
    if climate.programs:
        doc["programs"] = [climate.programs[slot] for slot in sorted(climate.programs)]
    return doc


def _energies(state: VehicleState, at: str, now: datetime) -> list[dict[str, Any]]:
    traits = state.traits
    energies = []
    if traits.fuel_range_km:
        energies.append(
            {
                "createdAt": at,
                "type": "Fuel",
                "subType": traits.fuel_subtype,
                "level": round(state.fuel_percent, 1),
                "autonomy": int(traits.fuel_range_km * state.fuel_percent / 100),
            }
        )
    if traits.battery_wh:
        energies.append(_electric(state, at, now))
    return energies


def _electric(state: VehicleState, at: str, now: datetime) -> dict[str, Any]:
    traits = state.traits
    residual = int(traits.battery_wh * state.electric_percent / 100)
    battery = {
        "load": {"createdAt": at, "capacity": traits.battery_wh, "residual": residual},
        "health": {"createdAt": at, "capacity": 97, "resistance": 100},
    }
    electric: dict[str, Any] = {"battery": battery}
    if traits.chargeable:
        electric["charging"] = _charging(state, now)
    autonomy = int(traits.electric_range_km * state.electric_percent / 100)
    if state.motorization is Motorization.HYDROGEN:
        autonomy = 0  # the buffer battery does not move the car on its own
    return {
        "createdAt": at,
        "type": "Electric",
        "subType": "ElectricEnergy",
        "level": round(state.electric_percent, 1),
        "autonomy": autonomy,
        "extension": {"electric": electric},
    }


def _charging(state: VehicleState, now: datetime) -> dict[str, Any]:
    charging = state.charging
    status = charging.status if charging.plugged else "Disconnected"
    doc: dict[str, Any] = {
        "plugged": charging.plugged,
        "status": status,
        "chargingPowerLevel": charging.power_level,
        "type": charging.target,
    }
    if state.charging_now:
        power = POWER_KW[charging.power_level]
        missing_wh = max(0.0, charging.target_percent - state.electric_percent) / 100
        missing_wh *= state.traits.battery_wh
        doc["chargingRate"] = min(500, int(power / CONSUMPTION_KWH_PER_KM))
        doc["chargingMode"] = "Quick" if power >= 22 else "Slow"
        doc["remainingTime"] = iso_duration(missing_wh / (power * 1000) * 3600)
    if charging.next_delayed_time is not None:
        delayed = _until(charging.next_delayed_time, now)
        if delayed is not None:
            doc["nextDelayedTime"] = delayed
    if charging.programs:
        doc["schedule"] = {"programs": [dict(p) for p in charging.programs]}
    return doc


def _until(moment: str, now: datetime) -> str | None:
    """The status reports the delay until the next charge (a duration), not the instant."""
    try:
        start = datetime.fromisoformat(moment)
    except ValueError:
        return None
    if start.tzinfo is None or start <= now:
        return None
    return iso_duration((start - now).total_seconds())


def iso_duration(seconds: float) -> str:
    """``PT1H5M`` style, to the minute (``PT0M`` for less than a minute)."""
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"PT{hours}H{minutes}M" if hours else f"PT{minutes}M"
