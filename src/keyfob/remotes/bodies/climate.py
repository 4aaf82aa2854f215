"""The ``preconditioning`` action: start the air conditioning now, or set/delete its programs.

A program is either written (``actionsType: Set``, which needs the whole program) or removed
(``Delete``, which needs only the slot). The official schema still requires ``start`` on every
program, so a stored Delete carries ``start: PT0S`` when the caller left it out: the slot is
all the vehicle reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from keyfob.remotes.bodies.base import (
    Occurence,
    StrictModel,
    check_time_of_day,
    check_unique_slots,
    problem,
)

MAX_PROGRAMS = 4
DELETE_PLACEHOLDER_START = "PT0S"


class PreconditioningProgram(StrictModel):
    """One of the (at most four) weekly programs of the air conditioning."""

    slot: int = Field(ge=1, le=MAX_PROGRAMS)
    actions_type: Literal["Set", "Delete"] = "Set"
    enabled: bool | None = None
    recurrence: Literal["None", "Daily"] = "Daily"
    start: str | None = None
    occurence: Occurence | None = None

    _check_start = field_validator("start")(check_time_of_day)

    @model_validator(mode="after")
    def _set_needs_the_whole_program(self) -> PreconditioningProgram:
        if self.actions_type == "Set":
            missing = [
                name
                for name, value in (
                    ("enabled", self.enabled),
                    ("start", self.start),
                    ("occurence", self.occurence),
                )
                if value is None
            ]
            if missing:
                verb = "is" if len(missing) == 1 else "are"
                raise problem(f"{', '.join(missing)} {verb} required when actionsType is Set")
        return self

    @property
    def is_delete(self) -> bool:
        return self.actions_type == "Delete"

    def to_stored(self) -> dict[str, Any]:
        if self.is_delete:
            return {
                "slot": self.slot,
                "actionsType": "Delete",
                "start": self.start or DELETE_PLACEHOLDER_START,
            }
        return super().to_stored()


class AirConditioning(StrictModel):
    """Start now (``immediate``) and/or change programs; one of the two is needed."""

    immediate: bool | None = None
    programs: list[PreconditioningProgram] | None = Field(
        default=None, min_length=1, max_length=MAX_PROGRAMS
    )

    @field_validator("programs")
    @classmethod
    def _slots_unique(
        cls, programs: list[PreconditioningProgram] | None
    ) -> list[PreconditioningProgram] | None:
        if programs is not None:
            check_unique_slots([program.slot for program in programs])
        return programs

    @model_validator(mode="after")
    def _something_to_do(self) -> AirConditioning:
        if self.immediate is None and self.programs is None:
            raise problem("must contain immediate or programs (or both)")
        return self

    def to_stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        if self.immediate is not None:
            stored["immediate"] = self.immediate
        if self.programs is not None:
            stored["programs"] = [program.to_stored() for program in self.programs]
        return stored


class PreconditioningAction(StrictModel):
    """Body member ``preconditioning`` → RemoteType ``ThermalPreconditioning``."""

    air_conditioning: AirConditioning

    def to_stored(self) -> dict[str, Any]:
        return {"airConditioning": self.air_conditioning.to_stored()}
