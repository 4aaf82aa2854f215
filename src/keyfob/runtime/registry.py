"""Listing and removing partners, fleets and vehicles, for ``keyfob admin``.

Removal never takes history with it: a vehicle that has remotes, a fleet that still has
vehicles or callbacks, a partner that still has fleets, is refused with what is left (a
``CONFLICT``). What belongs to the removed row alone goes with it: a vehicle's last status,
its wake-up log and its links to end users. A running ``keyfob serve`` stops simulating a
removed vehicle within ``sim_registry_poll_s`` (``runtime.sim_registry``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from keyfob.auth.models import partners
from keyfob.auth.user_models import user_vehicles
from keyfob.callbacks.models import callbacks
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import isoformat
from keyfob.kit.text import shown
from keyfob.remotes.models import idempotency_keys, remotes
from keyfob.vehicles.models import fleets, vehicle_states, vehicles, wake_ups


async def _count(conn: AsyncConnection, table: Table, where: ColumnElement[bool]) -> int:
    return int(
        (await conn.execute(select(func.count()).select_from(table).where(where))).scalar_one()
    )


def _refuse(what: str, left: dict[str, int], then: str) -> None:
    named = [f"{n} {noun if n > 1 else noun.removesuffix('s')}" for noun, n in left.items() if n]
    if named:
        raise KeyfobError(ErrorCode.CONFLICT, f"{what} still has {' and '.join(named)}: {then}")


async def fleet_rows(conn: AsyncConnection, login: str | None) -> list[dict[str, Any]]:
    vehicle_count = select(func.count()).where(vehicles.c.fleet_id == fleets.c.id).scalar_subquery()
    query = (
        select(fleets.c.id, fleets.c.name, fleets.c.created_at, partners.c.login, vehicle_count)
        .join(partners, partners.c.id == fleets.c.partner_id)
        .order_by(fleets.c.created_at, fleets.c.id)
    )
    if login is not None:
        query = query.where(partners.c.login == login)
    return [
        {
            "fleetId": r.id,
            "name": r.name,
            "partner": r.login,
            "vehicles": int(r[4]),
            "createdAt": isoformat(r.created_at),
        }
        for r in (await conn.execute(query)).all()
    ]


async def vehicle_rows(conn: AsyncConnection, fleet_id: str | None) -> list[dict[str, Any]]:
    query = select(vehicles).order_by(vehicles.c.created_at, vehicles.c.id)
    if fleet_id is not None:
        query = query.where(vehicles.c.fleet_id == fleet_id)
    return [
        {
            "vid": r.id,
            "vin": r.vin,
            "motorization": r.motorization,
            "fleetId": r.fleet_id,
            "simulated": r.simulated,
            "createdAt": isoformat(r.created_at),
        }
        for r in (await conn.execute(query)).all()
    ]


async def remove_vehicle(conn: AsyncConnection, wanted: str) -> dict[str, str]:
    """The vehicle with this id or VIN, unless it has remotes."""
    row = (
        await conn.execute(
            select(vehicles.c.id, vehicles.c.vin).where(
                (vehicles.c.id == wanted) | (vehicles.c.vin == wanted.upper())
            )
        )
    ).first()
    if row is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no vehicle has the id or VIN {shown(wanted)}")
    history = await _count(conn, remotes, remotes.c.vehicle_id == row.id)
    _refuse(f"vehicle {row.id}", {"remotes": history}, "its history is kept")
    for table, column in (
        (wake_ups, wake_ups.c.vehicle_id),
        (vehicle_states, vehicle_states.c.vehicle_id),
        (user_vehicles, user_vehicles.c.vehicle_id),
    ):
        await conn.execute(delete(table).where(column == row.id))
    await conn.execute(delete(vehicles).where(vehicles.c.id == row.id))
    return {"removed": "vehicle", "vid": row.id, "vin": row.vin}


async def remove_fleet(conn: AsyncConnection, fleet_id: str) -> dict[str, str]:
    """The fleet, once it has no vehicles, callbacks or remotes left."""
    if (await conn.execute(select(fleets.c.id).where(fleets.c.id == fleet_id))).first() is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no fleet {shown(fleet_id)}")
    left = {
        "vehicles": await _count(conn, vehicles, vehicles.c.fleet_id == fleet_id),
        "callbacks": await _count(conn, callbacks, callbacks.c.fleet_id == fleet_id),
        "remotes": await _count(conn, remotes, remotes.c.fleet_id == fleet_id),
    }
    _refuse(f"fleet {fleet_id}", left, "remove its vehicles and callbacks first")
    await conn.execute(delete(fleets).where(fleets.c.id == fleet_id))
    return {"removed": "fleet", "fleetId": fleet_id}


async def remove_partner(conn: AsyncConnection, login: str) -> dict[str, str]:
    """The partner, once it has no fleets (nor remembered Idempotency-Keys) left."""
    row = (await conn.execute(select(partners.c.id).where(partners.c.login == login))).first()
    if row is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no partner with login {shown(login)}")
    left = {
        "fleets": await _count(conn, fleets, fleets.c.partner_id == row.id),
        "idempotency keys": await _count(
            conn, idempotency_keys, idempotency_keys.c.partner_id == row.id
        ),
    }
    _refuse(f"partner {login}", left, "remove its fleets first")
    await conn.execute(delete(partners).where(partners.c.id == row.id))
    return {"removed": "partner", "id": row.id, "login": login}
