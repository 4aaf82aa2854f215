"""Signing in to ``/console`` as an end user over HTTP, as a browser does: the console's
brand form, keyfob's own login and consent pages, the redirect back with the code; and the
users, callbacks and remotes the user-console tests need."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from console_support import csrf_of
from keyfob.auth.users import get_user_by_login, link_vehicle
from keyfob.remotes.models import remotes
from keyfob.store.engine import Database
from oauth_support import PASSWORD, add_user, submit

PEUGEOT = "clientsB2CPeugeot"
ALICE, BOB = "alice@example.com", "bob@example.com"
HOOK = "https://hooks.example.com/keyfob"


async def own(app: Any, login: str, *vehicle_ids: str) -> None:
    ctx = app.state.ctx
    await add_user(ctx, login)
    async with ctx.database.transaction() as conn:
        user = await get_user_by_login(conn, login)
        assert user is not None
        for vehicle_id in vehicle_ids:
            await link_vehicle(conn, user_id=user.id, vehicle_id=vehicle_id, now=ctx.clock())


async def stored_remotes(db: Database) -> int:
    async with db.read() as conn:
        count: int = (await conn.execute(select(func.count()).select_from(remotes))).scalar_one()
    return count


async def new_callback(client: httpx.AsyncClient, label: str) -> str:
    page = await client.get("/console/user/callbacks")
    answer = await client.post(
        "/console/user/callbacks",
        data={
            "csrf": csrf_of(page),
            "label": label,
            "callback.webhook.name": label,
            "callback.webhook.target": HOOK,
            "type.Remote": "on",
        },
    )
    assert answer.status_code == 200, answer.text
    assert "whsec_" in answer.text, "the signing secret, shown once"
    listed = await client.get("/console/user/callbacks")
    found = [
        line.split('/status"')[0].rsplit("/", 1)[1]
        for line in listed.text.splitlines()
        if 'action="/console/user/callbacks/' in line
    ]
    assert found, listed.text
    return found[-1]


async def horn(
    client: httpx.AsyncClient, vehicle_id: str, callback_id: str, csrf_from: str | None = None
) -> httpx.Response:
    page = await client.get(csrf_from or f"/console/user/vehicles/{vehicle_id}")
    data = {"csrf": csrf_of(page), "action": "horn", "callback": callback_id}
    return await client.post(
        f"/console/user/vehicles/{vehicle_id}/remotes", data={**data, "horn.state": "Activated"}
    )


def path_of(location: str) -> str:
    """A redirect's path and query: the test client speaks to one server."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def start(client: httpx.AsyncClient, realm: str = PEUGEOT) -> httpx.Response:
    """The console's brand form posted: the redirect to the authorization server."""
    page = await client.get("/console/user/login")
    assert page.status_code == 200, page.text
    answer = await client.post("/console/user/login", data={"csrf": csrf_of(page), "realm": realm})
    assert answer.status_code == 303, answer.text
    return answer


async def to_callback(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD, realm: str = PEUGEOT
) -> str:
    """Through the login and consent pages: where the authorization server sends the browser."""
    authorize = await client.get(path_of((await start(client, realm)).headers["location"]))
    assert authorize.status_code == 200, authorize.text
    consent = await submit(client, authorize, login=login, password=password)
    assert consent.status_code == 200, consent.text
    allowed = await submit(client, consent, decision="allow")
    assert allowed.status_code == 302, allowed.text
    return str(allowed.headers["location"])


async def sign_in_user(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD
) -> httpx.Response:
    """The whole sign-in; the console's answer to the callback (a 303 to the user's pages)."""
    back = await client.get(path_of(await to_callback(client, login, password)))
    assert back.status_code == 303, back.text
    return back
