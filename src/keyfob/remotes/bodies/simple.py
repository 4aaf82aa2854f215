"""The one-switch actions: doors, horn, lights, wake-up, immobilization and stolen.

Each is a tiny model, but the ``stolen`` action hides a rule the schema only states in prose:
one request carries exactly one of ``stolen``, ``trackingPeriod`` and ``immobilization``.
``trackingPeriod`` may change either period alone (the schema requires neither), so at least one
of ``running`` (seconds, ≥ 5) and ``shutdown`` (seconds, ≥ 60) must be present (decision 15).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from keyfob.remotes.bodies.base import StrictModel, problem


class DoorAction(StrictModel):
    """Body member ``door`` → RemoteType ``Doors``; ``forced`` is deprecated but accepted."""

    state: Literal["Unlocked", "Locked"]
    forced: bool | None = None


class HornAction(StrictModel):
    """Body member ``horn`` → RemoteType ``Horn``."""

    state: Literal["Activated", "Unactivated"]


class LightsAction(StrictModel):
    """Body member ``lights`` → RemoteType ``Lights``."""

    on: bool


class WakeUpAction(StrictModel):
    """Body member ``wakeUp`` → RemoteType ``WakeUp``; ``{}`` means ``{"action": "WakeUp"}``."""

    action: Literal["WakeUp"] = "WakeUp"


class ImmobilizationAction(StrictModel):
    """Body member ``immobilization`` (and ``stolen.immobilization``): ``activate`` or release."""

    activate: bool


class TrackingPeriod(StrictModel):
    """How often a stolen vehicle reports, ignition on (``running``) and off (``shutdown``)."""

    running: int | None = Field(default=None, ge=5)
    shutdown: int | None = Field(default=None, ge=60)

    @model_validator(mode="after")
    def _not_empty(self) -> TrackingPeriod:
        if self.running is None and self.shutdown is None:
            raise problem("must contain running or shutdown (or both)")
        return self


class StolenAction(StrictModel):
    """Body member ``stolen`` → RemoteType ``Stolen``."""

    stolen: bool | None = None
    tracking_period: TrackingPeriod | None = None
    immobilization: ImmobilizationAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StolenAction:
        present = [
            name
            for name, value in (
                ("stolen", self.stolen),
                ("trackingPeriod", self.tracking_period),
                ("immobilization", self.immobilization),
            )
            if value is not None
        ]
        if not present:
            raise problem("must contain exactly one of stolen, trackingPeriod, immobilization")
        if len(present) > 1:
            raise problem(
                f"must contain exactly one of stolen, trackingPeriod, immobilization "
                f"(found {', '.join(present)}), send them in separate remotes"
            )
        return self
