"""Provisioning: the demo tenant a newcomer gets on an empty database, and admin creation.

The demo has both faces: a partner with a fleet of simulated vehicles (the fleet face), and
an end user who owns half of them with a first-party OAuth client to sign in through (the
user face). Their credentials are printed and written to a JSON file once, when they are
created; later starts find the partner and leave everything alone.
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

from keyfob.auth.clients import create_client
from keyfob.auth.models import partners
from keyfob.auth.passwords import new_password
from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import ALL_SCOPES
from keyfob.auth.service import create_partner
from keyfob.auth.users import create_user, link_vehicle
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import Vehicle, create_fleet, create_vehicle
from keyfob.vehicles.vins import random_vin
from keyfob.vocabulary import Motorization

DEMO_LOGIN = "demo"
DEMO_USER = "driver@example.com"
DEMO_REALM = "clientsB2CPeugeot"
DEMO_REDIRECTS = ("http://127.0.0.1:8787/oauth/callback", "mymap://oauth2redirect/fr")
DEMO_SCOPE = ("openid", "profile")
"""What the demo app asks for: a first-party client is granted every scope for it."""
MIX = (Motorization.ELECTRIC, Motorization.HYBRID, Motorization.THERMIC)


@dataclass(frozen=True)
class DemoUser:
    login: str
    password: str
    vehicles: list[Vehicle]
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class DemoTenant:
    login: str
    password: str
    client_id: str
    fleet_id: str
    vehicles: list[Vehicle]
    user: DemoUser | None = None

    def as_json(self, root: str) -> dict[str, Any]:
        """The credentials file; ``root`` is the server's public URL."""
        root = root.rstrip("/")
        document: dict[str, Any] = {
            "baseUrl": f"{root}/connectedcar/v3",
            "partner": {"login": self.login, "password": self.password, "clientId": self.client_id},
            "fleetId": self.fleet_id,
            "vehicles": [
                {"vid": v.id, "vin": v.vin, "motorization": v.motorization} for v in self.vehicles
            ],
        }
        if self.user is not None:
            user = self.user
            document["userBaseUrl"] = f"{root}/connectedcar/v4"
            document["oauthBaseUrl"] = f"{root}/am/oauth2"
            document["user"] = {
                "login": user.login,
                "password": user.password,
                "vehicles": [{"id": v.id, "vin": v.vin} for v in user.vehicles],
            }
            document["oauthClient"] = {
                "clientId": user.client_id,
                "clientSecret": user.client_secret,
                "redirectUri": DEMO_REDIRECTS[0],
                "realm": DEMO_REALM,
                "scopes": list(DEMO_SCOPE),
            }
        return document


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
    user = await provision_demo_user(conn, owned=created[: (len(created) + 1) // 2], now=now)
    return DemoTenant(DEMO_LOGIN, password, partner.client_id, fleet.id, created, user)


async def provision_demo_user(
    conn: AsyncConnection, *, owned: list[Vehicle], now: datetime
) -> DemoUser:
    """An end user owning ``owned`` (they stay in the demo fleet) and the app they use."""
    password = new_password()
    user = await create_user(
        conn, login=DEMO_USER, password=password, now=now, first_name="Demo", last_name="Driver"
    )
    for vehicle in owned:
        await link_vehicle(conn, user_id=user.id, vehicle_id=vehicle.id, now=now)
    realm = find_realm(DEMO_REALM)
    assert realm is not None
    app = await create_client(
        conn,
        name="My Peugeot (keyfob demo)",
        redirect_uris=DEMO_REDIRECTS,
        scopes=ALL_SCOPES,
        realm=realm.name,
        now=now,
        first_party=True,
    )
    assert app.secret is not None
    return DemoUser(user.login, password, owned, app.client.client_id, app.secret)


def write_credentials(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
