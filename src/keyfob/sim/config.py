"""The numbers a simulated vehicle lives by, in one frozen value.

``speed`` scales how long the car takes to *react* (executing a command, waking from an SMS):
1.0 is realistic for demos, 0 answers instantly for tests. Physical processes (the awake window,
charging, a preconditioning run, battery drain) follow the clock instead, so a test moves them
with a fake clock and a demo sees them at their real pace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.link.protocol import Action
from keyfob.sim.faults import FaultPlan

ACTION_SECONDS: Mapping[Action, float] = MappingProxyType(
    {
        Action.DOOR: 3.0,
        Action.HORN: 2.0,
        Action.LIGHTS: 2.0,
        Action.PRECONDITIONING: 4.0,
        Action.CHARGING: 4.0,
        Action.WAKE_UP: 1.0,
        Action.NAVIGATION: 3.0,
        Action.IMMOBILIZATION: 5.0,
        Action.STOLEN: 3.0,
    }
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    speed: float = 1.0
    awake_window: float = 180.0  # decision 19: awake 3 min after waking or a stop
    awake_extension: float = 180.0  # … and 3 min more per message received
    awake_cap: float = 1800.0  # never more than 30 min ahead, however many messages
    wake_latency: tuple[float, float] = (10.0, 20.0)  # SMS to online, before scaling
    action_seconds: Mapping[Action, float] = field(default_factory=lambda: ACTION_SECONDS)
    refusal_seconds: float = 0.5
    report_period: float = 60.0  # telemetry cadence while charging or driving
    climate_run: float = 1200.0  # an immediate preconditioning runs 20 min
    max_commands: int = 10  # vehicle-side throttle: this many commands …
    command_window: float = 60.0  # … per this many seconds
    low_traction_percent: float = 15.0
    low_voltage: float = 11.8  # below: horn, lights and preconditioning are refused
    dead_voltage: float = 11.0  # below: the modem cannot wake up any more
    outbox_size: int = 100  # undelivered results kept; at the bound the oldest is dropped
    outbox_retry: float = 2.0  # seconds between attempts to send held results while awake
    faults: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        checks = {
            "speed": self.speed >= 0,
            "awake_window": self.awake_window > 0,
            "awake_extension": self.awake_extension >= 0,
            "awake_cap": self.awake_cap >= self.awake_window,
            "wake_latency": 0 <= self.wake_latency[0] <= self.wake_latency[1],
            "report_period": self.report_period > 0,
            "climate_run": self.climate_run > 0,
            "max_commands": self.max_commands >= 1,
            "command_window": self.command_window > 0,
            "outbox_size": self.outbox_size >= 1,
            "outbox_retry": self.outbox_retry > 0,
        }
        for name, valid in checks.items():
            if not valid:
                raise KeyfobError(ErrorCode.BAD_REQUEST, f"{name}: out of range in {self!r}")

    def reaction(self, seconds: float) -> float:
        """A reaction time scaled by ``speed``."""
        return seconds * self.speed
