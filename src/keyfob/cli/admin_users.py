"""``keyfob admin user|oauth-client|keys`` and ``vehicle link``: the user face's accounts.

Secrets are printed once, when they are made (a user's generated password, a client's
secret), and never listed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.clients import OAuthClient, create_client, list_clients
from keyfob.auth.keys import KeyRing
from keyfob.auth.passwords import new_password
from keyfob.auth.realms import REALMS, find_realm
from keyfob.auth.scopes import ALL_SCOPES, scope_text
from keyfob.auth.tokens import TokenPolicy
from keyfob.auth.users import create_user, get_user_by_login, link_vehicle, list_users
from keyfob.auth.users import vehicle_ids_of as user_vehicle_ids
from keyfob.cli.admin_db import DbOption, print_json, run, run_configured
from keyfob.cli.defaults import GENERATED, shown
from keyfob.config import Settings
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import isoformat, utcnow
from keyfob.vehicles.models import vehicles

user_app = typer.Typer(help="End users of the user face (/connectedcar/v4).", no_args_is_help=True)
oauth_client_app = typer.Typer(
    help="OAuth clients: the apps end users sign in through.", no_args_is_help=True
)
keys_app = typer.Typer(help="The keys that sign the user face's tokens.", no_args_is_help=True)

REALM_NAMES = ", ".join(realm.short for realm in REALMS)


async def _vehicle(conn: AsyncConnection, wanted: str) -> tuple[str, str]:
    """``(id, vin)`` of the vehicle with this id or VIN, in any fleet."""
    query = select(vehicles.c.id, vehicles.c.vin).where(
        or_(vehicles.c.id == wanted, vehicles.c.vin == wanted.upper())
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise KeyfobError(ErrorCode.NOT_FOUND, f"no vehicle has the id or VIN {wanted!r}")
    return row.id, row.vin


@user_app.command("add")
def user_add(
    login: Annotated[str, typer.Argument(help="The user's e-mail address.")],
    password: Annotated[str | None, typer.Option(help=GENERATED)] = None,
    first_name: Annotated[str | None, typer.Option(help="Given name.")] = None,
    last_name: Annotated[str | None, typer.Option(help="Family name.")] = None,
    vehicle: Annotated[
        list[str] | None, typer.Option(help="A vehicle (id or VIN) the user owns; repeatable.")
    ] = None,
    db_url: DbOption = None,
) -> None:
    """Create an end user; prints the password once."""
    secret = password or new_password()

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        now = utcnow()
        user = await create_user(
            conn,
            login=login,
            password=secret,
            now=now,
            first_name=first_name,
            last_name=last_name,
        )
        owned = []
        for wanted in vehicle or []:
            vehicle_id, vin = await _vehicle(conn, wanted)
            await link_vehicle(conn, user_id=user.id, vehicle_id=vehicle_id, now=now)
            owned.append({"id": vehicle_id, "vin": vin})
        return {"id": user.id, "login": user.login, "password": secret, "vehicles": owned}

    print_json(run(db_url, work))


@user_app.command("list")
def user_list(db_url: DbOption = None) -> None:
    """List end users and the ids of their vehicles (never their passwords)."""

    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        return [
            {
                "id": user.id,
                "login": user.login,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "vehicles": await user_vehicle_ids(conn, user.id),
            }
            for user in await list_users(conn)
        ]

    print_json(run(db_url, work))


def vehicle_link(
    login: Annotated[str, typer.Argument(help="The end user's login (e-mail).")],
    vehicle: Annotated[str, typer.Argument(help="The vehicle's id or VIN.")],
    db_url: DbOption = None,
) -> None:
    """Give an end user a vehicle (it stays in its fleet)."""

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        user = await get_user_by_login(conn, login)
        if user is None:
            raise KeyfobError(ErrorCode.NOT_FOUND, f"no user with login {login!r}")
        vehicle_id, vin = await _vehicle(conn, vehicle)
        added = await link_vehicle(conn, user_id=user.id, vehicle_id=vehicle_id, now=utcnow())
        return {"login": user.login, "vehicleId": vehicle_id, "vin": vin, "linked": added}

    print_json(run(db_url, work))


def _client_json(client: OAuthClient) -> dict[str, Any]:
    return {
        "clientId": client.client_id,
        "name": client.name,
        "redirectUris": list(client.redirect_uris),
        "realm": client.realm,
        "scopes": scope_text(client.scopes),
        "firstParty": client.first_party,
        "public": client.is_public,
    }


@oauth_client_app.command("add")
def oauth_client_add(
    name: Annotated[str, typer.Argument(help="What the consent page calls the app.")],
    redirect_uri: Annotated[
        list[str], typer.Option(help="A redirect URI, matched exactly; repeatable.")
    ],
    realm: Annotated[
        str, typer.Option(help=f"The brand realm of its tokens: {REALM_NAMES}.")
    ] = "clientsB2CPeugeot",
    scope: Annotated[
        list[str] | None,
        typer.Option(help=f"A scope it may be granted; repeatable.  {shown('every scope')}"),
    ] = None,
    first_party: Annotated[
        bool, typer.Option("--first-party", help="Asking `openid profile` grants every scope.")
    ] = False,
    public: Annotated[
        bool, typer.Option("--public", help="No secret (a mobile app); PKCE is required.")
    ] = False,
    client_id: Annotated[str | None, typer.Option(help=f"A UUID.  {GENERATED}")] = None,
    db_url: DbOption = None,
) -> None:
    """Register an OAuth client; prints its secret once."""
    if find_realm(realm) is None:
        typer.echo(f"error: no realm {realm!r}; use one of {REALM_NAMES}", err=True)
        raise typer.Exit(2)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        new = await create_client(
            conn,
            name=name,
            redirect_uris=redirect_uri,
            scopes=scope or sorted(ALL_SCOPES),
            realm=realm,
            now=utcnow(),
            first_party=first_party,
            public=public,
            client_id=client_id,
        )
        return {**_client_json(new.client), "clientSecret": new.secret}

    print_json(run(db_url, work))


@oauth_client_app.command("list")
def oauth_client_list(db_url: DbOption = None) -> None:
    """List OAuth clients (never their secrets)."""

    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        return [_client_json(client) for client in await list_clients(conn)]

    print_json(run(db_url, work))


def _ring(settings: Settings) -> KeyRing:
    policy = TokenPolicy.from_settings(settings)
    return KeyRing(publish_s=policy.publish_s, reload_s=policy.key_reload_s)


async def _published(conn: AsyncConnection, ring: KeyRing, now: datetime) -> list[str]:
    return [str(key["kid"]) for key in (await ring.jwks(conn, now=now))["keys"]]


@keys_app.command("rotate")
def keys_rotate(db_url: DbOption = None) -> None:
    """Make a new signing key. Running processes sign with it within `key_reload_s`; the
    old key stays published until every token it signed has expired."""

    async def work(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
        ring, now = _ring(settings), utcnow()
        kid = await ring.rotate(conn, now=now)
        return {
            "kid": kid,
            "createdAt": isoformat(now),
            "published": await _published(conn, ring, now),
        }

    print_json(run_configured(db_url, work))


@keys_app.command("list")
def keys_list(db_url: DbOption = None) -> None:
    """The ids of the published keys, the signing one first."""

    async def work(conn: AsyncConnection, settings: Settings) -> dict[str, Any]:
        ring = _ring(settings)
        await ring.load(conn)
        return {"published": await _published(conn, ring, utcnow())}

    print_json(run_configured(db_url, work))
