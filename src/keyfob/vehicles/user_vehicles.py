"""The vehicles of one end user, as the user face reads them: always through their links.

Every query joins ``user_vehicles`` on the caller's user id, so a vehicle of another user, or
a fleet's vehicle linked to nobody, is a 404 exactly like an unknown id: the answer never tells
whether such a vehicle exists (never a 403). The link table belongs to ``auth`` (the user
accounts); it is named here by its columns only, as ``auth`` names the registry, because the
two domains do not import each other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, column, func, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.vehicles.models import vehicles
from keyfob.vehicles.service import Vehicle, vehicle_from_row

user_vehicles = table(
    "user_vehicles", column("user_id"), column("vehicle_id"), column("created_at")
)
"""``auth.user_models.user_vehicles``, as far as these reads need it."""

FLEET_ONLY_REMOTES = ("stolen", "immobilization")
"""Capability entries of remotes the user face does not offer (decision 18)."""


def user_vehicle_not_found(vehicle_id: str) -> KeyfobError:
    return KeyfobError(ErrorCode.VEHICLE_NOT_FOUND, f"no vehicle {shown(vehicle_id)} for this user")


def _linked(user_id: str) -> ColumnElement[bool]:
    return and_(user_vehicles.c.vehicle_id == vehicles.c.id, user_vehicles.c.user_id == user_id)


def _filters(vin_prefix: str | None) -> list[ColumnElement[bool]]:
    if not vin_prefix:
        return []
    return [vehicles.c.vin.startswith(vin_prefix, autoescape=True)]


async def list_user_vehicles(
    conn: AsyncConnection, *, user_id: str, page: PageRequest, vin_prefix: str | None = None
) -> tuple[int, list[Vehicle]]:
    """The size of the user's (filtered) collection and one page of it, oldest link first."""
    joined = vehicles.join(user_vehicles, _linked(user_id))
    where = _filters(vin_prefix)
    count = select(func.count()).select_from(joined).where(*where)
    total = int((await conn.execute(count)).scalar_one())
    rows = (
        await conn.execute(
            select(vehicles)
            .select_from(joined)
            .where(*where)
            .order_by(user_vehicles.c.created_at, vehicles.c.id)
            .offset(page.offset)
            .limit(page.limit())
        )
    ).all()
    return total, [vehicle_from_row(r) for r in rows]


async def get_user_vehicle(conn: AsyncConnection, *, user_id: str, vehicle_id: str) -> Vehicle:
    """The vehicle if it is linked to the user; a 404 otherwise, whoever else holds it."""
    row = (
        await conn.execute(
            select(vehicles)
            .select_from(vehicles.join(user_vehicles, _linked(user_id)))
            .where(vehicles.c.id == vehicle_id)
        )
    ).first()
    if row is None:
        raise user_vehicle_not_found(vehicle_id)
    return vehicle_from_row(row)


def user_capabilities(capabilities: dict[str, Any]) -> dict[str, Any]:
    """The stored ``onboardCapabilities`` without the remotes the user face does not offer."""
    remote = {
        key: value
        for key, value in capabilities.get("remote", {}).items()
        if key not in FLEET_ONLY_REMOTES
    }
    return {**capabilities, "remote": remote}
