"""``keyfob admin``: provision, list and remove partners, fleets and vehicles directly in the
database, and reset a partner's password. Removal keeps history (``runtime.registry``).

The user face's accounts (end users, OAuth clients, vehicle links, signing keys) are in
``cli.admin_users``."""

from __future__ import annotations

import random
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.passwords import new_password
from keyfob.auth.service import (
    CredentialCache,
    create_partner,
    get_partner_by_login,
    list_partners,
    set_password,
)
from keyfob.cli import admin_users
from keyfob.cli.admin_db import DbOption
from keyfob.cli.admin_db import print_json as _print
from keyfob.cli.admin_db import run as _run
from keyfob.cli.defaults import GENERATED
from keyfob.kit.clock import utcnow
from keyfob.runtime import registry
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_fleet, create_vehicle, fleet_exists
from keyfob.vehicles.vins import random_vin
from keyfob.vocabulary import Motorization

app = typer.Typer(
    help="Provision partners, fleets and vehicles; end users, OAuth clients and signing keys.",
    no_args_is_help=True,
)
partner_app = typer.Typer(help="Partners (tenants).", no_args_is_help=True)
fleet_app = typer.Typer(help="Fleets of a partner.", no_args_is_help=True)
vehicle_app = typer.Typer(help="Vehicles of a fleet.", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
app.add_typer(fleet_app, name="fleet")
app.add_typer(vehicle_app, name="vehicle")
app.add_typer(admin_users.user_app, name="user")
app.add_typer(admin_users.oauth_client_app, name="oauth-client")
app.add_typer(admin_users.keys_app, name="keys")
vehicle_app.command("link")(admin_users.vehicle_link)


@partner_app.command("add")
def partner_add(
    login: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    password: Annotated[str | None, typer.Option(help=GENERATED)] = None,
    client_id: Annotated[str | None, typer.Option(help=GENERATED)] = None,
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


@partner_app.command("password")
def partner_password(
    login: str,
    password: Annotated[str | None, typer.Option(help="The new password.")] = None,
    db_url: DbOption = None,
) -> None:
    """Give a partner a new password; prints it. A running keyfob serve may accept the old one
    for up to 5 minutes more (its cache of checked credentials)."""
    secret = password or new_password()

    async def work(conn: AsyncConnection) -> dict[str, str]:
        await set_password(conn, login=login, password=secret, cache=CredentialCache())
        return {"login": login, "password": secret}

    _print(_run(db_url, work))


@partner_app.command("remove")
def partner_remove(login: str, db_url: DbOption = None) -> None:
    """Remove a partner that has no fleets left."""
    _print(_run(db_url, lambda conn: registry.remove_partner(conn, login)))


@fleet_app.command("add")
def fleet_add(
    login: Annotated[str, typer.Argument(help="The owning partner's login.")],
    name: Annotated[str, typer.Option(help="Fleet name.")],
    fleet_id: Annotated[str | None, typer.Option("--id", help=GENERATED)] = None,
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


@fleet_app.command("list")
def fleet_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's (a login).")] = None,
    db_url: DbOption = None,
) -> None:
    """List fleets, with their partner and how many vehicles each has."""
    _print(_run(db_url, lambda conn: registry.fleet_rows(conn, partner)))


@fleet_app.command("remove")
def fleet_remove(fleet_id: str, db_url: DbOption = None) -> None:
    """Remove a fleet that has no vehicles or callbacks left."""
    _print(_run(db_url, lambda conn: registry.remove_fleet(conn, fleet_id)))


@vehicle_app.command("add")
def vehicle_add(
    fleet_id: Annotated[str, typer.Argument(help="The fleet to add the vehicle to.")],
    motorization: Annotated[Motorization, typer.Option(help="Energy type.")],
    vin: Annotated[str | None, typer.Option(help=f"A plausible VIN is made.  {GENERATED}")] = None,
    vehicle_id: Annotated[str | None, typer.Option("--id", help=GENERATED)] = None,
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


@vehicle_app.command("list")
def vehicle_list(
    fleet_id: Annotated[str | None, typer.Option("--fleet", help="Only this fleet's.")] = None,
    db_url: DbOption = None,
) -> None:
    """List vehicles (id, VIN, energy, fleet, simulated or not)."""
    _print(_run(db_url, lambda conn: registry.vehicle_rows(conn, fleet_id)))


@vehicle_app.command("remove")
def vehicle_remove(
    vehicle: Annotated[str, typer.Argument(help="The vehicle's id or VIN.")],
    db_url: DbOption = None,
) -> None:
    """Remove a vehicle that has no remotes; a running keyfob serve stops simulating it."""
    _print(_run(db_url, lambda conn: registry.remove_vehicle(conn, vehicle)))
