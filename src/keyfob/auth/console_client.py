"""The console's own OAuth client, one per brand realm, registered on first use.

An end user signs in to ``/console`` through keyfob's authorization server like any app: the
console sends them to ``/am/oauth2/authorize`` (code + PKCE) and gets the code back on
``/console/user/callback``. Tokens are issued for one client in one realm, so the console needs
a client per realm; it is made the first time someone signs in to that realm, on any
installation, not only the demo's.

The client is first-party (the user is granted every data and remote scope, as with the brand
apps) and confidential with a secret nobody keeps: the console exchanges its codes inside the
server (``auth.oauth.exchange_code``), so no one can use the token endpoint as the console.
Its only redirect URI comes from the settings (``public_url``, else where ``serve`` listens),
never from a request's ``Host`` header: a code can only travel back to this server.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.clients import OAuthClient, check_redirect_uri, create_client, get_client
from keyfob.auth.realms import Realm
from keyfob.auth.scopes import ALL_SCOPES
from keyfob.auth.user_models import oauth_clients

CALLBACK_PATH = "/console/user/callback"
PREFIX = "keyfob-console-"


def client_id_for(realm: Realm) -> str:
    return PREFIX + realm.short


def redirect_uri(root_url: str) -> str:
    """Where the console takes codes back: ``root_url`` is ``Settings.root_url``."""
    return root_url.rstrip("/") + CALLBACK_PATH


async def console_client(
    conn: AsyncConnection, *, realm: Realm, redirect: str, now: datetime
) -> OAuthClient:
    """The realm's console client, created if missing; ``redirect`` is registered if it is not
    yet (a changed ``public_url`` replaces the one registered before). Two processes making
    the same client at once: one of them fails on the primary key; its caller tries again."""
    wanted = client_id_for(realm)
    found = await get_client(conn, wanted)
    if found is None:
        made = await create_client(
            conn,
            name=f"keyfob console ({realm.brand})",
            redirect_uris=[redirect],
            scopes=ALL_SCOPES,
            realm=realm.name,
            now=now,
            first_party=True,
            client_id=wanted,
        )
        return made.client
    if found.redirect_uris != (redirect,):
        await conn.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id == wanted)
            .values(redirect_uris=[check_redirect_uri(redirect)])
        )
        found = await get_client(conn, wanted)
        assert found is not None
    return found
