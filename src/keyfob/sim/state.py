"""What a simulated vehicle knows about itself: plain mutable records, no behaviour.

The state uses the contract's own words for values that end up in the status document
(``Locked``, ``InProgress``, ``Enabled`` …) so building that document is a copy, not a mapping.
Per-motorization facts (battery size, range, what is fitted) live in ``TRAITS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keyfob.link.protocol import Action, Command, Outcome, Result, WireCause, WireFeedback
from keyfob.sim.outbox import Outbox
from keyfob.sim.params import Request
from keyfob.vocabulary import Motorization

OPENINGS = ("Driver", "Passenger", "RearLeft", "RearRight", "Trunk")
POWER_KW = {"Level1": 2.3, "Level2": 3.7, "Level3": 7.4, "Level4": 11.0, "Level5": 22.0}
CONSUMPTION_KWH_PER_KM = 0.16
OUTBOX_SIZE = 100  # results a vehicle keeps while it cannot deliver them


class Mode(StrEnum):
    """Connectivity of the vehicle: only an ``AWAKE`` vehicle is connected to the broker."""

    ASLEEP = "asleep"
    WAKING = "waking"
    AWAKE = "awake"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Traits:
    battery_wh: int  # traction (or buffer) battery; 0 = none
    electric_range_km: int
    fuel_range_km: int  # 0 = no tank
    fuel_subtype: str | None  # FossilEnergy | Hydrogen
    chargeable: bool
    climate: bool  # remote preconditioning fitted


TRAITS: dict[Motorization, Traits] = {
    Motorization.ELECTRIC: Traits(50_000, 350, 0, None, chargeable=True, climate=True),
    Motorization.HYBRID: Traits(12_400, 55, 700, "FossilEnergy", chargeable=True, climate=True),
    Motorization.THERMIC: Traits(0, 0, 800, "FossilEnergy", chargeable=False, climate=False),
    Motorization.HYDROGEN: Traits(1_600, 0, 550, "Hydrogen", chargeable=False, climate=True),
}


@dataclass(slots=True)
class Charging:
    plugged: bool = False
    status: str = "Disconnected"  # Disconnected | InProgress | Failure | Stopped | Finished
    power_level: str = "Level3"
    target: str = "Full"  # Full = 100 %, Partial = 80 %
    next_delayed_time: str | None = None
    programs: tuple[dict[str, Any], ...] = ()
    until: datetime | None = None  # the end of the charging program now running
    charger_faulty: bool = False

    @property
    def target_percent(self) -> float:
        return 100.0 if self.target == "Full" else 80.0


@dataclass(slots=True)
class Climate:
    status: str = "Disabled"  # Enabled | Disabled | Finished | Failure
    starting_cause: str | None = None
    running_until: datetime | None = None
    programs: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class Theft:
    stolen: bool = False
    episode: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    start_position: tuple[float, float] | None = None
    end_position: tuple[float, float] | None = None
    running_period: int = 30  # trackingPeriod.running, seconds
    shutdown_period: int = 300  # trackingPeriod.shutdown, seconds


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer the vehicle settled on for a command, before it is sent."""

    outcome: Outcome
    cause: WireCause | None = None
    feedback: WireFeedback | None = None

    @property
    def execute(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@dataclass(slots=True)
class InFlight:
    """A command being carried out: its answer is decided and waits for ``done_at``."""

    command: Command
    request: Request | None  # None when the params could not be read
    verdict: Verdict
    done_at: datetime
    drop_result: bool = False


@dataclass(slots=True)
class VehicleState:
    motorization: Motorization
    mode: Mode
    updated_at: datetime
    awake_until: datetime
    mode_until: datetime | None = None  # end of WAKING or OFFLINE
    next_report: datetime | None = None
    locked: bool = True
    open: frozenset[str] = frozenset()
    key_inside: bool = False
    ignition: str = "Stop"  # Stop | StartUp | Start
    privacy: str = "None"  # None | Geolocation | Full
    voltage: float = 12.6
    electric_percent: float = 80.0
    fuel_percent: float = 60.0
    charging: Charging = field(default_factory=Charging)
    climate: Climate = field(default_factory=Climate)
    immobilized: bool = False
    theft: Theft = field(default_factory=Theft)
    longitude: float = 2.3522
    latitude: float = 48.8566
    heading: int = 0
    odometer_km: float = 12_000.0
    outside_temp: float = 14.0
    destination: tuple[tuple[float, ...], ...] = ()
    horn_sounding: bool = False
    lights_blinking: bool = False
    cancel_next: bool = False
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    answered: dict[str, Result] = field(default_factory=dict)  # oldest first
    command_times: list[datetime] = field(default_factory=list)
    outbox: Outbox = field(default_factory=lambda: Outbox(OUTBOX_SIZE))  # results owed
    outbox_retry_at: datetime | None = None  # when to try the held results again
    programs_seen_at: datetime | None = None  # programs that start later have not run yet

    @property
    def traits(self) -> Traits:
        return TRAITS[self.motorization]

    @property
    def driving(self) -> bool:
        return self.ignition == "Start"

    @property
    def charging_now(self) -> bool:
        return self.charging.status == "InProgress"

    @property
    def climate_running(self) -> bool:
        return self.climate.status == "Enabled"

    @property
    def climate_energy_percent(self) -> float:
        """The energy a preconditioning draws on (hydrogen feeds its small buffer battery)."""
        if self.motorization is Motorization.HYDROGEN:
            return self.fuel_percent
        return self.electric_percent

    def busy_with(self, action: Action) -> bool:
        return any(
            f.command.action is action and f.verdict.execute for f in self.in_flight.values()
        )
