"""A page of a fleet's vehicles with what an operator scans for: presence, last status,
energy, and the wake-ups spent this month (decision 19's quota).

A few small queries whatever the fleet's size: the count and the ids of the page (the fleet
and an optional VIN fragment in the filter; only ids are sorted and skipped, so a deep page does
not drag 10,000 rows with their capabilities through the sort), then the rows, the state and
the month's wake-up count of just those vehicles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.paging import PageRequest
from keyfob.vehicles.models import vehicle_states, vehicles, wake_ups
from keyfob.vehicles.service import Vehicle, vehicle_from_row
from keyfob.vehicles.state import month_start


@dataclass(frozen=True, slots=True)
class VehicleLine:
    vehicle: Vehicle
    presence: str
    presence_at: datetime | None
    status_at: datetime | None
    energy: str | None
    """``Electric 80 %``, ``Fuel 42 %``, or both; ``None`` before the first status."""
    wake_ups_this_month: int


def energy_summary(status: dict[str, Any] | None) -> str | None:
    """The levels of the status document's ``energies``, in the order the vehicle gave them."""
    if not status:
        return None
    parts = []
    for energy in status.get("energies") or []:
        if isinstance(energy, dict) and isinstance(energy.get("level"), int | float):
            parts.append(f"{energy.get('type', 'Energy')} {energy['level']:g} %")
    return ", ".join(parts) or None


PRESENCES = ("online", "asleep", "offline", "unknown")


async def fleet_page(
    conn: AsyncConnection,
    *,
    fleet_id: str,
    vin: str | None,
    page: PageRequest,
    now: datetime,
    presence: str | None = None,
) -> tuple[int, list[VehicleLine]]:
    """The fleet's vehicles in creation order; ``vin`` keeps those whose VIN contains it,
    ``presence`` those last known online, asleep, offline or unknown."""
    where = [vehicles.c.fleet_id == fleet_id]
    if vin:
        where.append(vehicles.c.vin.contains(vin.strip().upper(), autoescape=True))
    if presence:
        known = select(vehicle_states.c.vehicle_id).where(vehicle_states.c.presence == presence)
        where.append(vehicles.c.id.in_(known.scalar_subquery()))
    total = (await conn.execute(select(func.count()).select_from(vehicles).where(*where))).scalar()
    ids = list(
        (
            await conn.execute(
                select(vehicles.c.id)
                .where(*where)
                .order_by(vehicles.c.created_at, vehicles.c.id)
                .offset(page.offset)
                .limit(page.limit())
            )
        ).scalars()
    )
    if not ids:
        return int(total or 0), []
    found = {
        row.id: row for row in await conn.execute(select(vehicles).where(vehicles.c.id.in_(ids)))
    }
    rows = [found[vid] for vid in ids if vid in found]
    states = {
        row.vehicle_id: row
        for row in await conn.execute(
            select(
                vehicle_states.c.vehicle_id,
                vehicle_states.c.presence,
                vehicle_states.c.presence_at,
                vehicle_states.c.status,
                vehicle_states.c.status_at,
            ).where(vehicle_states.c.vehicle_id.in_(ids))
        )
    }
    counts = await wake_ups_since(conn, ids, month_start(now))
    lines = []
    for row in rows:
        state = states.get(row.id)
        lines.append(
            VehicleLine(
                vehicle=vehicle_from_row(row),
                presence=state.presence if state is not None else "unknown",
                presence_at=state.presence_at if state is not None else None,
                status_at=state.status_at if state is not None else None,
                energy=energy_summary(state.status if state is not None else None),
                wake_ups_this_month=counts.get(row.id, 0),
            )
        )
    return int(total or 0), lines


async def wake_ups_since(
    conn: AsyncConnection, vehicle_ids: list[str], since: datetime
) -> dict[str, int]:
    """Wake-ups sent to each vehicle since ``since`` (the ``(vehicle_id, at)`` index)."""
    rows = await conn.execute(
        select(wake_ups.c.vehicle_id, func.count().label("n"))
        .where(wake_ups.c.vehicle_id.in_(vehicle_ids), wake_ups.c.at >= since)
        .group_by(wake_ups.c.vehicle_id)
    )
    return {row.vehicle_id: int(row.n) for row in rows}
