"""Scenario knobs: what a driver, a test or a demo does to a simulated car from outside.

Opening a door, switching the ignition on or changing the privacy setting are interactions in
the car: they wake a sleeping car at once, and every change is published as telemetry. The
other knobs (battery levels, a faulty charging station, an armed driver cancel) only change the
state, and show in the next telemetry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock
from keyfob.sim.config import SimConfig
from keyfob.sim.outputs import Disconnect, Output, Send
from keyfob.sim.physics import advance
from keyfob.sim.rng import Rng
from keyfob.sim.state import OPENINGS, Mode, VehicleState

PRIVACY_LEVELS = ("None", "Geolocation", "Full")


def personalize(state: VehicleState, rng: Rng) -> None:
    """Give each vehicle its own plausible starting point, reproducible from its seed."""
    state.longitude += rng.uniform(-0.08, 0.08)
    state.latitude += rng.uniform(-0.05, 0.05)
    state.heading = rng.randrange(0, 360)
    state.odometer_km = round(rng.uniform(3_000, 90_000), 1)
    state.electric_percent = round(rng.uniform(45, 90), 1)
    state.fuel_percent = round(rng.uniform(30, 90), 1)
    state.voltage = round(rng.uniform(12.4, 12.7), 2)
    state.outside_temp = round(rng.uniform(4, 22), 1)


def delayed_start(moment: str | None) -> datetime | None:
    if moment is None:
        return None
    try:
        start = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return start if start.tzinfo is not None else None


def _bad(field: str, problem: str) -> KeyfobError:
    return KeyfobError(ErrorCode.BAD_REQUEST, f"{field}: {problem}")


class Knobs:
    """Mixed into ``SimVehicle``; every knob returns the outputs to carry out."""

    __slots__ = ()

    state: VehicleState
    config: SimConfig
    clock: Clock

    def _finish(self, outputs: list[Output], now: datetime) -> list[Output]:
        raise NotImplementedError

    def _telemetry(self, now: datetime) -> Send:
        raise NotImplementedError

    def _become_awake(self, now: datetime, outputs: list[Output]) -> None:
        raise NotImplementedError

    def _extend_awake(self, now: datetime) -> None:
        raise NotImplementedError

    def open_door(self, identifier: str, now: datetime | None = None) -> list[Output]:
        return self._set_opening(identifier, True, now)

    def close_door(self, identifier: str, now: datetime | None = None) -> list[Output]:
        return self._set_opening(identifier, False, now)

    def set_ignition(self, on: bool, now: datetime | None = None) -> list[Output]:
        """Ignition on drives at 30 km/h (only ``StartUp`` when immobilized); off parks."""
        moment = self._now(now)
        if on:
            self.state.ignition = "StartUp" if self.state.immobilized else "Start"
            return self._changed(moment, interaction=True)
        self.state.ignition = "Stop"  # a stopped car stays awake for the awake window
        stop_window = moment + timedelta(seconds=self.config.awake_window)
        self.state.awake_until = max(self.state.awake_until, stop_window)
        return self._changed(moment, interaction=False)

    def plug(self, now: datetime | None = None) -> list[Output]:
        """Plug a charging cable in; charging waits for a command or a delayed start."""
        moment = self._now(now)
        self.state.charging.plugged = True
        if self.state.charging.status == "Disconnected":
            self.state.charging.status = "Stopped"
        return self._changed(moment, interaction=False)

    def unplug(self, now: datetime | None = None) -> list[Output]:
        moment = self._now(now)
        self.state.charging.plugged = False
        self.state.charging.status = "Disconnected"
        return self._changed(moment, interaction=False)

    def set_charger_faulty(self, faulty: bool = True) -> None:
        self.state.charging.charger_faulty = faulty

    def set_key_inside(self, inside: bool = True) -> None:
        self.state.key_inside = inside

    def cancel_next_command(self) -> None:
        """The driver will cancel the next cancellable command on the dashboard."""
        self.state.cancel_next = True

    def set_privacy(self, level: str, now: datetime | None = None) -> list[Output]:
        if level not in PRIVACY_LEVELS:
            raise _bad("privacy", f"{level!r} is not one of {', '.join(PRIVACY_LEVELS)}")
        moment = self._now(now)
        self.state.privacy = level
        return self._changed(moment, interaction=True)

    def set_battery_level(self, percent: float, now: datetime | None = None) -> list[Output]:
        """The traction battery level (the tank level for a thermic car)."""
        if not 0 <= percent <= 100:
            raise _bad("percent", f"{percent} is outside 0..100")
        moment = self._now(now)
        if self.state.traits.battery_wh and self.state.traits.chargeable:
            self.state.electric_percent = float(percent)
        else:
            self.state.fuel_percent = float(percent)
        return self._changed(moment, interaction=False)

    def set_voltage(self, volts: float, now: datetime | None = None) -> list[Output]:
        """The 12 V battery voltage."""
        if not 0 <= volts <= 16:
            raise _bad("volts", f"{volts} is outside 0..16")
        moment = self._now(now)
        self.state.voltage = float(volts)
        return self._changed(moment, interaction=False)

    def go_offline(self, seconds: float, now: datetime | None = None) -> list[Output]:
        """Lose the network for ``seconds`` (the broker publishes the last will: offline)."""
        if seconds <= 0:
            raise _bad("seconds", "must be positive")
        moment = self._now(now)
        outputs: list[Output] = []
        if self.state.mode is Mode.AWAKE:
            self.state.mode = Mode.OFFLINE
            self.state.mode_until = moment + timedelta(seconds=seconds)
            outputs.append(Disconnect(graceful=False))
        return self._finish(outputs, moment)

    def _set_opening(self, identifier: str, opened: bool, now: datetime | None) -> list[Output]:
        if identifier not in OPENINGS:
            raise _bad("identifier", f"{identifier!r} is not one of {', '.join(OPENINGS)}")
        moment = self._now(now)
        if opened:
            self.state.open = self.state.open | {identifier}
        else:
            self.state.open = self.state.open - {identifier}
        return self._changed(moment, interaction=True)

    def _now(self, now: datetime | None) -> datetime:
        moment = now or self.clock()
        advance(self.state, moment)
        return moment

    def _changed(self, now: datetime, *, interaction: bool) -> list[Output]:
        outputs: list[Output] = []
        if interaction and self.state.mode in (Mode.ASLEEP, Mode.WAKING):
            self._become_awake(now, outputs)
        if interaction and self.state.mode is Mode.AWAKE:
            self._extend_awake(now)
        if self.state.mode is Mode.AWAKE:
            outputs.append(self._telemetry(now))
        return self._finish(outputs, now)
