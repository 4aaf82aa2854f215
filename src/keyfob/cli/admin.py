"""``keyfob admin``: provision partners, fleets and vehicles directly in the database."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.passwords import new_password
from keyfob.auth.service import create_partner, get_partner_by_login, list_partners
from keyfob.cli.settings import build_settings
from keyfob.errors import KeyfobError
from keyfob.kit.clock import utcnow
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_fleet, create_vehicle, fleet_exists
from keyfob.vehicles.vins import random_vin
from keyfob.vocabulary import Motorization

app = typer.Typer(help="Provision partners, fleets and vehicles.", no_args_is_help=True)
partner_app = typer.Typer(help="Partners (tenants).", no_args_is_help=True)
fleet_app = typer.Typer(help="Fleets of a partner.", no_args_is_help=True)
vehicle_app = typer.Typer(help="Vehicles of a fleet.", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
app.add_typer(fleet_app, name="fleet")
app.add_typer(vehicle_app, name="vehicle")

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (KEYFOB_DB).")]
T = TypeVar("T")


def _run(db_url: str | None, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    settings = build_settings(db=db_url)

    async def run() -> T:
        database = Database(settings.db)
        try:
            await migrate.upgrade(database)
            async with database.transaction() as conn:
                return await work(conn)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except KeyfobError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _print(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))


@partner_app.command("add")
def partner_add(
    login: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    password: Annotated[str | None, typer.Option(help="Default: a generated one.")] = None,
    client_id: Annotated[str | None, typer.Option(help="Default: a generated one.")] = None,
    db_url: DbOption = None,
) -> None:
    """Create a partner; prints its credentials."""
    secret = password or new_password()

    async def work(conn: AsyncConnection) -> dict[str, str]:
        partner = await create_partner(
            conn, login=login, password=secret, name=name, now=utcnow(), client_id=client_id
        )
        return {"id": partner.id, "login": login, "password": secret, "clientId": partner.client_id}

    _print(_run(db_url, work))


@partner_app.command("list")
def partner_list(db_url: DbOption = None) -> None:
    """List partners (never their passwords)."""

    async def work(conn: AsyncConnection) -> list[dict[str, str]]:
        return [
            {"id": p.id, "login": p.login, "name": p.name, "clientId": p.client_id}
            for p in await list_partners(conn)
        ]

    _print(_run(db_url, work))


@fleet_app.command("add")
def fleet_add(
    login: Annotated[str, typer.Argument(help="The owning partner's login.")],
    name: Annotated[str, typer.Option(help="Fleet name.")],
    fleet_id: Annotated[str | None, typer.Option("--id", help="Default: generated.")] = None,
    db_url: DbOption = None,
) -> None:
    """Create a fleet owned by a partner."""

    async def work(conn: AsyncConnection) -> dict[str, str]:
        partner = await get_partner_by_login(conn, login)
        if partner is None:
            typer.echo(f"error: no partner with login {login!r}", err=True)
            raise typer.Exit(1)
        fleet = await create_fleet(
            conn, partner_id=partner.id, name=name, now=utcnow(), fleet_id=fleet_id
        )
        return {"fleetId": fleet.id, "name": fleet.name, "partner": login}

    _print(_run(db_url, work))


@vehicle_app.command("add")
def vehicle_add(
    fleet_id: Annotated[str, typer.Argument(help="The fleet to add the vehicle to.")],
    motorization: Annotated[Motorization, typer.Option(help="Energy type.")],
    vin: Annotated[str | None, typer.Option(help="Default: a generated plausible VIN.")] = None,
    vehicle_id: Annotated[str | None, typer.Option("--id", help="Default: generated.")] = None,
    db_url: DbOption = None,
) -> None:
    """Add a vehicle (simulated unless a real unit connects with its VIN)."""
    chosen = vin or random_vin(random.Random())  # noqa: S311 - not a secret

    async def work(conn: AsyncConnection) -> dict[str, str]:
        if not await fleet_exists(conn, fleet_id):
            typer.echo(f"error: no fleet {fleet_id!r}", err=True)
            raise typer.Exit(1)
        vehicle = await create_vehicle(
            conn,
            fleet_id=fleet_id,
            vin=chosen,
            motorization=motorization.value,
            capabilities=capabilities_for(motorization),
            now=utcnow(),
            vehicle_id=vehicle_id,
        )
        return {"vid": vehicle.id, "vin": vehicle.vin, "motorization": vehicle.motorization}

    _print(_run(db_url, work))
