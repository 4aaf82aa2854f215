"""End users signed in for real, for tests of the user face.

``make_user`` creates a user (owning the given vehicles), an OAuth client of its own, and
signs the user in through the authorization server's services: a code with a PKCE challenge,
exchanged for real tokens. Nothing is faked, so a test that passes with these tokens passes
with the ones an app gets from ``/am/oauth2``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from keyfob.api import errors
from keyfob.api.middleware import RateLimitHeaders
from keyfob.api.user_access import CurrentUser
from keyfob.auth.clients import OAuthClient, create_client
from keyfob.auth.oauth import exchange_code, issue_code
from keyfob.auth.pkce import new_verifier, s256
from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import ALL_SCOPES
from keyfob.auth.users import create_user, link_vehicle
from keyfob.runtime.context import AppContext

REDIRECT_URI = "https://app.example.com/oauth/callback"
PEUGEOT = "clientsB2CPeugot/OTPPeugeot"


@dataclass
class UserLogin:
    user_id: str
    login: str
    password: str
    client_id: str
    client_secret: str | None
    token: str
    """The access token."""
    refresh_token: str
    id_token: str | None
    realm: str
    """The canonical realm the token was issued for."""
    client: OAuthClient
    headers: dict[str, str] = field(default_factory=dict)
    """``Authorization: Bearer`` and ``x-introspect-realm`` (the short spelling)."""
    params: dict[str, str] = field(default_factory=dict)
    """``{"client_id": ...}``."""


async def make_user(
    ctx: AppContext,
    *,
    vehicle_ids: Iterable[str] = (),
    scopes: Iterable[str] = ALL_SCOPES,
    realm: str = PEUGEOT,
    first_party: bool = False,
    login: str | None = None,
    password: str | None = None,
) -> UserLogin:
    """A user owning ``vehicle_ids``, signed in through a new client allowed ``scopes``."""
    found = find_realm(realm)
    assert found is not None, f"no realm {realm!r}"
    now = ctx.clock()
    login = login or f"user-{secrets.token_hex(4)}@example.com"
    password = password or secrets.token_urlsafe(12)
    wanted = sorted(scopes)
    async with ctx.database.transaction() as conn:
        user = await create_user(
            conn, login=login, password=password, now=now, first_name="Test", last_name="User"
        )
        for vehicle_id in vehicle_ids:
            await link_vehicle(conn, user_id=user.id, vehicle_id=vehicle_id, now=now)
        new = await create_client(
            conn,
            name=f"app of {login}",
            redirect_uris=[REDIRECT_URI],
            scopes=wanted,
            realm=found.name,
            first_party=first_party,
            now=now,
        )
    signed = await sign_in(ctx, new.client, user.id, scopes=wanted)
    return UserLogin(
        user_id=user.id,
        login=user.login,
        password=password,
        client_id=new.client.client_id,
        client_secret=new.secret,
        token=signed["access_token"],
        refresh_token=signed["refresh_token"],
        id_token=signed.get("id_token"),
        realm=found.name,
        client=new.client,
        headers={
            "Authorization": f"Bearer {signed['access_token']}",
            "x-introspect-realm": found.short,
        },
        params={"client_id": new.client.client_id},
    )


async def sign_in(
    ctx: AppContext, client: OAuthClient, user_id: str, *, scopes: Iterable[str]
) -> dict[str, Any]:
    """The token answer for ``user_id`` through ``client``: a PKCE code, then its exchange."""
    verifier = new_verifier()
    now = ctx.clock()
    async with ctx.database.transaction() as conn:
        code = await issue_code(
            conn,
            auth=ctx.user_auth,
            client=client,
            user_id=user_id,
            redirect_uri=REDIRECT_URI,
            scopes=scopes,
            code_challenge=s256(verifier),
            now=now,
        )
        tokens = await exchange_code(
            conn,
            auth=ctx.user_auth,
            client=client,
            code=code.code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
            now=now,
        )
    return tokens.as_json()


async def relogin(ctx: AppContext, user: UserLogin, *, scopes: Iterable[str]) -> UserLogin:
    """The same user and client signed in again with (usually fewer) ``scopes``."""
    signed = await sign_in(ctx, user.client, user.user_id, scopes=scopes)
    short = user.headers["x-introspect-realm"]
    return UserLogin(
        **{
            **user.__dict__,
            "token": signed["access_token"],
            "refresh_token": signed["refresh_token"],
            "id_token": signed.get("id_token"),
            "headers": {
                "Authorization": f"Bearer {signed['access_token']}",
                "x-introspect-realm": short,
            },
        }
    )


def probe_app(ctx: AppContext) -> FastAPI:
    """A minimal app with one v4 route behind ``CurrentUser`` that echoes the caller."""
    app = FastAPI()
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(RateLimitHeaders)

    @app.get("/connectedcar/v4/probe")
    async def probe(user: CurrentUser) -> dict[str, Any]:
        return {
            "user": user.user_id,
            "client": user.client_id,
            "realm": user.realm,
            "scopes": sorted(user.scopes),
        }

    return app


def user_http(app: Any, user: UserLogin) -> httpx.AsyncClient:
    """An HTTP client to ``app`` that sends ``user``'s token, realm and client_id."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://keyfob.test",
        headers=user.headers,
        params=user.params,
    )
