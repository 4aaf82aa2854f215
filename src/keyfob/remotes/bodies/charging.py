"""The ``charging`` action: start/stop now, schedule, or set the charging preferences.

Rules the schema leaves to prose, enforced here:

* ``immediate: true`` starts a charge and ``immediate: false`` stops one (decision 16);
* ``schedule`` carries exactly one mode, ``nextDelayedTime`` or ``programs``;
* ``preferences`` travels alone, never with ``immediate``, ``schedule`` or ``nextDelayedTime``;
* the deprecated top-level ``nextDelayedTime`` is accepted and stored as sent (an old client
  reading its remote back sees its own body); it means the same as ``schedule.nextDelayedTime``,
  which ``ChargingAction.delayed_start`` exposes whichever place it came from. Sending both
  is refused as ambiguous.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from keyfob.remotes.bodies.base import (
    Occurence,
    StrictModel,
    check_time_of_day,
    check_timestamp,
    check_unique_slots,
    problem,
)

MAX_PROGRAMS = 4


class ChargeProgram(StrictModel):
    """A weekly charging window; only ``start`` is required by the contract."""

    slot: int | None = Field(default=None, ge=1, le=MAX_PROGRAMS)
    enabled: bool | None = None
    start: str
    end: str | None = None
    occurence: Occurence | None = None
    charge_until_full: bool | None = None

    _check_times = field_validator("start", "end")(check_time_of_day)


class ChargeSchedule(StrictModel):
    """A delayed start or a list of programs, never both."""

    next_delayed_time: str | None = None
    programs: list[ChargeProgram] | None = Field(
        default=None, min_length=1, max_length=MAX_PROGRAMS
    )

    _check_timestamp = field_validator("next_delayed_time")(check_timestamp)

    @field_validator("programs")
    @classmethod
    def _slots_unique(cls, programs: list[ChargeProgram] | None) -> list[ChargeProgram] | None:
        if programs is not None:
            check_unique_slots([program.slot for program in programs])
        return programs

    @model_validator(mode="after")
    def _one_mode(self) -> ChargeSchedule:
        if (self.next_delayed_time is None) == (self.programs is None):
            raise problem("must contain exactly one of nextDelayedTime, programs")
        return self


class ChargePreferences(StrictModel):
    """Charging power level and/or charge type."""

    level: Literal["Level1", "Level2", "Level3", "Level4", "Level5"] | None = None
    type: Literal["Partial", "Full"] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ChargePreferences:
        if self.level is None and self.type is None:
            raise problem("must contain level or type (or both)")
        return self


class ChargingAction(StrictModel):
    """Body member ``charging`` → RemoteType ``ElectricBatteryChargingRequest``."""

    immediate: bool | None = None
    schedule: ChargeSchedule | None = None
    next_delayed_time: str | None = None
    preferences: ChargePreferences | None = None

    _check_timestamp = field_validator("next_delayed_time")(check_timestamp)

    @model_validator(mode="after")
    def _coherent(self) -> ChargingAction:
        others = [
            name
            for name, value in (
                ("immediate", self.immediate),
                ("schedule", self.schedule),
                ("nextDelayedTime", self.next_delayed_time),
            )
            if value is not None
        ]
        if self.preferences is not None and others:
            raise problem(
                f"cannot be combined with {', '.join(others)} (send preferences in a remote "
                "of its own)",
                at=("preferences",),
            )
        if not others and self.preferences is None:
            raise problem(
                "must contain at least one of immediate, schedule, preferences "
                "(or the deprecated nextDelayedTime)"
            )
        if self.next_delayed_time is not None and self.schedule is not None:
            raise problem(
                "is a deprecated duplicate of schedule.nextDelayedTime, send only schedule",
                at=("nextDelayedTime",),
            )
        return self

    @property
    def delayed_start(self) -> str | None:
        """The delayed start, from ``schedule`` or from the deprecated top-level member."""
        if self.schedule is not None and self.schedule.next_delayed_time is not None:
            return self.schedule.next_delayed_time
        return self.next_delayed_time

    @property
    def programs(self) -> list[ChargeProgram]:
        """The scheduled programs (empty when the remote schedules none)."""
        if self.schedule is None or self.schedule.programs is None:
            return []
        return list(self.schedule.programs)
