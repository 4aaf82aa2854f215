"""A stored remote as its readers see it: one shape for the API's reads and the dispatcher's.

``Remote`` is built straight from a row of ``REMOTE_COLUMNS`` (``Remote(*row)``), because the
dispatcher reads a batch of them every turn; the column list is derived from the dataclass's
own fields, so the two cannot drift apart. The vehicle's VIN and fleet come from a join with
``vehicles`` (``REMOTES_AND_VEHICLES``): the dispatcher addresses the car by VIN and checks
that it is still in the remote's fleet.

A remote of the user face has no fleet: ``user_id`` says whose it is, and its label and own
attributes travel with every notification it raises (``ref.context``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

from keyfob.notifications.message import remote_context
from keyfob.remotes.events import RemoteRef
from keyfob.remotes.models import remotes
from keyfob.vehicles.models import vehicles


@dataclass(frozen=True, slots=True)
class Remote:
    """One remote; ``phase`` holds a ``lifecycle.Phase`` value as stored (a plain string)."""

    id: str
    fleet_id: str | None
    vehicle_id: str
    callback_id: str
    type: str
    body: dict[str, Any]
    status: str
    failure_cause: str | None
    feedback_detail: str | None
    phase: str
    created_at: datetime
    last_seq: int
    deadline_at: datetime | None
    command_id: str | None
    vin: str
    vehicle_fleet_id: str
    user_id: str | None
    label: str | None
    attributes: list[dict[str, str]] | None
    callback_attributes: dict[str, Any] | None
    expires_at: datetime | None
    """Not sent by then, it ends Done/Failed (``Keyfob-Expires-At``, an extension)."""

    @property
    def ref(self) -> RemoteRef:
        context = None
        if self.user_id is not None:
            context = remote_context(self.label, self.attributes, self.callback_attributes)
        return RemoteRef(self.id, self.callback_id, self.vin, self.type, self.last_seq, context)


_FROM_VEHICLES: dict[str, ColumnElement[Any]] = {
    "vin": vehicles.c.vin,
    "vehicle_fleet_id": vehicles.c.fleet_id.label("vehicle_fleet_id"),
}

REMOTE_COLUMNS: tuple[ColumnElement[Any], ...] = tuple(
    _FROM_VEHICLES[f.name] if f.name in _FROM_VEHICLES else remotes.c[f.name]
    for f in fields(Remote)
)
"""What to select for ``Remote``, in the order of its fields."""

REMOTES_AND_VEHICLES = remotes.join(vehicles, vehicles.c.id == remotes.c.vehicle_id)
"""What ``REMOTE_COLUMNS`` are selected from."""


def read_remotes(rows: Iterable[Sequence[Any]]) -> list[Remote]:
    """Rows of ``REMOTE_COLUMNS`` as remotes."""
    return [Remote(*row) for row in rows]
