"""Provisioning: the demo tenant a newcomer gets on an empty database, and admin creation.

The demo partner's credentials are printed and written to a JSON file once, when they are
created; later starts find the partner and leave it alone.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.models import partners
from keyfob.auth.passwords import new_password
from keyfob.auth.service import create_partner
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import Vehicle, create_fleet, create_vehicle
from keyfob.vehicles.vins import random_vin
from keyfob.vocabulary import Motorization

DEMO_LOGIN = "demo"
MIX = (Motorization.ELECTRIC, Motorization.HYBRID, Motorization.THERMIC)


@dataclass(frozen=True)
class DemoTenant:
    login: str
    password: str
    client_id: str
    fleet_id: str
    vehicles: list[Vehicle]

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "baseUrl": base_url,
            "partner": {"login": self.login, "password": self.password, "clientId": self.client_id},
            "fleetId": self.fleet_id,
            "vehicles": [
                {"vid": v.id, "vin": v.vin, "motorization": v.motorization} for v in self.vehicles
            ],
        }


async def database_is_empty(conn: AsyncConnection) -> bool:
    count = (await conn.execute(select(func.count()).select_from(partners))).scalar_one()
    return bool(count == 0)


async def add_vehicles(
    conn: AsyncConnection, *, fleet_id: str, count: int, now: datetime, seed: int
) -> list[Vehicle]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    created = []
    for index in range(count):
        motorization = MIX[index % len(MIX)]
        created.append(
            await create_vehicle(
                conn,
                fleet_id=fleet_id,
                vin=random_vin(rng),
                motorization=motorization.value,
                capabilities=capabilities_for(motorization),
                now=now,
            )
        )
    return created


async def provision_demo(
    conn: AsyncConnection, *, vehicles: int, now: datetime, seed: int = 7
) -> DemoTenant:
    password = new_password()
    partner = await create_partner(
        conn, login=DEMO_LOGIN, password=password, name="Demo fleet operator", now=now
    )
    fleet = await create_fleet(conn, partner_id=partner.id, name="Demo fleet", now=now)
    created = await add_vehicles(conn, fleet_id=fleet.id, count=vehicles, now=now, seed=seed)
    return DemoTenant(DEMO_LOGIN, password, partner.client_id, fleet.id, created)


def write_credentials(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
