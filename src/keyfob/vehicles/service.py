"""Fleets and vehicles: who owns what, looked up with the tenant always in the query.

Every lookup takes the partner (or the fleet already checked against it), so a partner can
never read another tenant's fleet or vehicle; an unknown and a foreign id look the same (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import new_id, new_ordered_id
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.store.queries import paged
from keyfob.vehicles.models import fleets, vehicle_states, vehicles


@dataclass(frozen=True)
class Fleet:
    id: str
    partner_id: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Vehicle:
    id: str
    fleet_id: str
    vin: str
    motorization: str
    capabilities: dict[str, Any]
    simulated: bool
    created_at: datetime
    updated_at: datetime


def fleet_not_found(fleet_id: str) -> KeyfobError:
    return KeyfobError(ErrorCode.FLEET_NOT_FOUND, f"no fleet {shown(fleet_id)} for this partner")


def vehicle_not_found(vehicle_id: str) -> KeyfobError:
    return KeyfobError(ErrorCode.VEHICLE_NOT_FOUND, f"no vehicle {shown(vehicle_id)} in this fleet")


def _fleet(row: Row[Any]) -> Fleet:
    return Fleet(row.id, row.partner_id, row.name, row.created_at, row.updated_at)


def vehicle_from_row(row: Row[Any]) -> Vehicle:
    return Vehicle(
        row.id,
        row.fleet_id,
        row.vin,
        row.motorization,
        row.capabilities,
        row.simulated,
        row.created_at,
        row.updated_at,
    )


async def get_fleet(conn: AsyncConnection, *, partner_id: str, fleet_id: str) -> Fleet:
    row = (
        await conn.execute(
            select(fleets).where(fleets.c.id == fleet_id, fleets.c.partner_id == partner_id)
        )
    ).first()
    if row is None:
        raise fleet_not_found(fleet_id)
    return _fleet(row)


async def list_fleets(
    conn: AsyncConnection, *, partner_id: str, page: PageRequest
) -> tuple[int, list[Fleet]]:
    where = fleets.c.partner_id == partner_id
    total, rows = await paged(conn, fleets, [where], [fleets.c.created_at, fleets.c.id], page)
    return total, [_fleet(r) for r in rows]


async def get_vehicle(conn: AsyncConnection, *, fleet_id: str, vehicle_id: str) -> Vehicle:
    row = (
        await conn.execute(
            select(vehicles).where(vehicles.c.id == vehicle_id, vehicles.c.fleet_id == fleet_id)
        )
    ).first()
    if row is None:
        raise vehicle_not_found(vehicle_id)
    return vehicle_from_row(row)


async def get_vehicle_by_vin(conn: AsyncConnection, *, partner_id: str, vin: str) -> Vehicle:
    row = (
        await conn.execute(
            select(vehicles)
            .join(fleets, fleets.c.id == vehicles.c.fleet_id)
            .where(vehicles.c.vin == vin, fleets.c.partner_id == partner_id)
        )
    ).first()
    if row is None:
        raise KeyfobError(
            ErrorCode.VEHICLE_NOT_FOUND, f"no vehicle with VIN {shown(vin)} in your fleets"
        )
    return vehicle_from_row(row)


async def list_vehicles(
    conn: AsyncConnection, *, fleet_id: str, page: PageRequest, vin_prefix: str | None = None
) -> tuple[int, list[Vehicle]]:
    """The size of the fleet's vehicle list (only VINs starting with ``vin_prefix`` when
    given) and one page of it, oldest first."""
    where = [vehicles.c.fleet_id == fleet_id]
    if vin_prefix:
        where.append(vehicles.c.vin.startswith(vin_prefix, autoescape=True))
    total, rows = await paged(conn, vehicles, where, [vehicles.c.created_at, vehicles.c.id], page)
    return total, [vehicle_from_row(r) for r in rows]


async def all_vehicles(conn: AsyncConnection) -> list[Vehicle]:
    rows = (await conn.execute(select(vehicles).order_by(vehicles.c.created_at))).all()
    return [vehicle_from_row(r) for r in rows]


async def create_fleet(
    conn: AsyncConnection, *, partner_id: str, name: str, now: datetime, fleet_id: str | None = None
) -> Fleet:
    fid = fleet_id or new_id()
    if await fleet_exists(conn, fid):
        raise KeyfobError(ErrorCode.ALREADY_EXISTS, f"fleet {fid!r} exists")
    await conn.execute(
        fleets.insert().values(
            id=fid, partner_id=partner_id, name=name, created_at=now, updated_at=now
        )
    )
    return Fleet(fid, partner_id, name, now, now)


async def create_vehicle(
    conn: AsyncConnection,
    *,
    fleet_id: str,
    vin: str,
    motorization: str,
    capabilities: dict[str, Any],
    now: datetime,
    simulated: bool = True,
    vehicle_id: str | None = None,
    mqtt_password_hash: str | None = None,
) -> Vehicle:
    if (await conn.execute(select(vehicles.c.id).where(vehicles.c.vin == vin))).first():
        raise KeyfobError(ErrorCode.ALREADY_EXISTS, f"a vehicle with VIN {vin!r} exists")
    vid = vehicle_id or new_ordered_id()
    await conn.execute(
        vehicles.insert().values(
            id=vid,
            fleet_id=fleet_id,
            vin=vin,
            motorization=motorization,
            capabilities=capabilities,
            simulated=simulated,
            mqtt_password_hash=mqtt_password_hash,
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(vehicle_states.insert().values(vehicle_id=vid, presence="unknown"))
    return Vehicle(vid, fleet_id, vin, motorization, capabilities, simulated, now, now)


async def fleet_exists(conn: AsyncConnection, fleet_id: str) -> bool:
    return (
        await conn.execute(select(fleets.c.id).where(fleets.c.id == fleet_id))
    ).first() is not None
