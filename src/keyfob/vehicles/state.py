"""What the platform knows of each vehicle: presence and latest status document.

Fed by the vehicles' own messages (presence with MQTT last will, status telemetry) and read by
the dispatcher's checks and by the status endpoint. (The wake-ups spent, decision 19's budgets,
are counted with the other facts of a due remote in ``remotes.progress``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store.units import ByKey
from keyfob.vehicles.models import vehicle_states, vehicles


@dataclass(frozen=True)
class VehicleState:
    vehicle_id: str
    presence: str
    presence_at: datetime | None
    status: dict[str, Any] | None
    status_at: datetime | None


async def get_state(conn: AsyncConnection, vehicle_id: str) -> VehicleState:
    row = (
        await conn.execute(select(vehicle_states).where(vehicle_states.c.vehicle_id == vehicle_id))
    ).first()
    if row is None:
        return VehicleState(vehicle_id, "unknown", None, None, None)
    return VehicleState(vehicle_id, row.presence, row.presence_at, row.status, row.status_at)


async def vehicle_ids_by_vin(conn: AsyncConnection, vins: set[str]) -> dict[str, str]:
    rows = (
        await conn.execute(select(vehicles.c.vin, vehicles.c.id).where(vehicles.c.vin.in_(vins)))
    ).all()
    return {r.vin: r.id for r in rows}


def presence_update(*, vehicle_id: str, presence: str, at: datetime) -> Update:
    """Record a presence message unless a newer one is known (touches no row then)."""
    return (
        update(vehicle_states)
        .where(
            vehicle_states.c.vehicle_id == vehicle_id,
            (vehicle_states.c.presence_at.is_(None)) | (vehicle_states.c.presence_at <= at),
        )
        .values(presence=presence, presence_at=at)
    )


STATUS = ByKey(
    vehicle_states,
    "vehicle_id",
    ("status", "status_at"),
    prefix="s_",
    unless_newer="status_at",
)
"""Telemetry for many vehicles, one row each: ``{s_vehicle_id, s_status, s_status_at}``; an
older report than the one known changes nothing. On PostgreSQL several go as one statement."""


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
