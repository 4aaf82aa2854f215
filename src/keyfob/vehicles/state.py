"""What the platform knows of each vehicle: presence, latest status document, wake-ups spent.

Fed by the vehicles' own messages (presence with MQTT last will, status telemetry) and read by
the dispatcher's checks and by the status endpoint. The wake-up ledger enforces decision 19's
budgets: a monthly quota and a short-window limit per vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.vehicles.models import vehicle_states, vehicles, wake_ups


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


async def set_presence(
    conn: AsyncConnection, *, vehicle_id: str, presence: str, at: datetime
) -> bool:
    """Record a presence message unless a newer one is already known; True if it applied."""
    result = await conn.execute(
        update(vehicle_states)
        .where(
            vehicle_states.c.vehicle_id == vehicle_id,
            (vehicle_states.c.presence_at.is_(None)) | (vehicle_states.c.presence_at <= at),
        )
        .values(presence=presence, presence_at=at)
    )
    return bool(result.rowcount)


async def set_status(
    conn: AsyncConnection, *, vehicle_id: str, status: dict[str, Any], at: datetime
) -> None:
    await conn.execute(
        update(vehicle_states)
        .where(
            vehicle_states.c.vehicle_id == vehicle_id,
            (vehicle_states.c.status_at.is_(None)) | (vehicle_states.c.status_at <= at),
        )
        .values(status=status, status_at=at)
    )


@dataclass(frozen=True)
class WakeBudget:
    this_month: int
    recent: int


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def wake_budget(
    conn: AsyncConnection, *, vehicle_id: str, now: datetime, window: timedelta
) -> WakeBudget:
    def count_since(moment: datetime) -> Any:
        return (
            select(func.count())
            .select_from(wake_ups)
            .where(wake_ups.c.vehicle_id == vehicle_id, wake_ups.c.at >= moment)
            .scalar_subquery()
        )

    row = (
        await conn.execute(select(count_since(month_start(now)), count_since(now - window)))
    ).one()
    return WakeBudget(this_month=int(row[0]), recent=int(row[1]))


async def record_wake_up(conn: AsyncConnection, *, vehicle_id: str, now: datetime) -> None:
    await conn.execute(wake_ups.insert().values(vehicle_id=vehicle_id, at=now))
