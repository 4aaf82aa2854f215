"""Seeded fault injection: the ways a real vehicle link misbehaves, reproducibly.

Each vehicle draws from its own ``Rng`` seeded with the fleet seed and its VIN, so a
failing run replays exactly with the same seed. Every roll happens when a command arrives, in a
fixed order, whether or not a probability is zero, so changing one probability does not
reshuffle the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.sim.rng import Rng


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Probabilities per received command, and the ranges of the delays they cause."""

    drop_command: float = 0.0  # the command never reaches the vehicle's logic
    drop_result: float = 0.0  # the vehicle acts, but its result is lost on the way
    delay: float = 0.0  # the answer comes late …
    delay_seconds: tuple[float, float] = (5.0, 30.0)  # … by this much
    offline: float = 0.0  # the vehicle loses its network instead of answering …
    offline_seconds: tuple[float, float] = (60.0, 600.0)  # … for this long
    vehicle_error: float = 0.0  # the vehicle answers failed / vehicleError

    def __post_init__(self) -> None:
        for name in ("drop_command", "drop_result", "delay", "offline", "vehicle_error"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise KeyfobError(ErrorCode.BAD_REQUEST, f"faults.{name}: must be within 0..1")
        for name in ("delay_seconds", "offline_seconds"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise KeyfobError(ErrorCode.BAD_REQUEST, f"faults.{name}: need 0 <= low <= high")

    @property
    def active(self) -> bool:
        return any(
            (self.drop_command, self.drop_result, self.delay, self.offline, self.vehicle_error)
        )


@dataclass(frozen=True, slots=True)
class FaultRoll:
    """What goes wrong with one command (``delay`` and ``offline_for`` in seconds, 0 = no)."""

    drop_command: bool = False
    drop_result: bool = False
    delay: float = 0.0
    offline_for: float = 0.0
    vehicle_error: bool = False


NO_FAULT = FaultRoll()


def roll(plan: FaultPlan, rng: Rng) -> FaultRoll:
    """Decide the faults for one command; deterministic for a given ``rng`` state."""
    if not plan.active:
        return NO_FAULT
    draws = [rng.random() for _ in range(5)]
    delay = rng.uniform(*plan.delay_seconds)
    offline_for = rng.uniform(*plan.offline_seconds)
    return FaultRoll(
        drop_command=draws[0] < plan.drop_command,
        offline_for=offline_for if draws[1] < plan.offline else 0.0,
        vehicle_error=draws[2] < plan.vehicle_error,
        delay=delay if draws[3] < plan.delay else 0.0,
        drop_result=draws[4] < plan.drop_result,
    )
