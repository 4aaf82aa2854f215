"""The console for end users: signing in through keyfob's own OAuth login (code + PKCE, the
console's own client per realm), pages scoped as the user face is, a remote from the form.

Another user's vehicle, callback and remote ids are tried through every user page: each is the
404 the user face answers, and nothing is stored or changed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from conftest import Tenant
from console_support import browser_http, csrf_of
from console_user_support import (
    ALICE,
    BOB,
    horn,
    new_callback,
    own,
    path_of,
    sign_in_user,
    start,
    stored_remotes,
    to_callback,
)
from keyfob.auth.clients import get_client
from keyfob.auth.users import get_user_by_login
from keyfob.remotes.models import remotes
from keyfob.store.engine import Database


async def test_a_driver_signs_in_through_keyfobs_oauth_login_and_sees_only_their_cars(
    app: Any, tenant: Tenant
) -> None:
    mine, theirs = tenant.vehicles["Electric"], tenant.vehicles["Thermic"]
    await own(app, ALICE, mine.id)
    await own(app, BOB, theirs.id)
    async with browser_http(app) as client:
        before = await client.get("/console/user/")
        assert before.status_code == 303
        assert before.headers["location"].endswith("/console/login")
        sent = await start(client)
        query = parse_qs(urlsplit(sent.headers["location"]).query)
        assert urlsplit(sent.headers["location"]).path == "/am/oauth2/authorize"
        assert query["client_id"] == ["keyfob-console-clientsB2CPeugeot"]
        assert query["redirect_uri"] == ["https://keyfob.test/console/user/callback"]
        assert query["code_challenge_method"] == ["S256"]
        answer = await sign_in_user(client, ALICE)
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "secure" in cookie
        assert answer.headers["location"].endswith("/console/user/")
        home = await client.get("/console/user/")
        assert home.status_code == 200, home.text
        assert "unsafe-inline" not in home.headers["content-security-policy"]
        vehicle = await client.get(f"/console/user/vehicles/{mine.id}")
    assert mine.vin in home.text
    assert ALICE in home.text
    assert theirs.vin not in home.text
    assert vehicle.status_code == 200
    assert "Send horn" in vehicle.text
    assert "Send immobilization" not in vehicle.text, "not an action of the user face"
    async with app.state.ctx.database.read() as conn:
        client_row = await get_client(conn, "keyfob-console-clientsB2CPeugeot")
    assert client_row is not None
    assert client_row.first_party
    assert not client_row.is_public


async def test_another_users_ids_are_404_through_every_user_page_and_nothing_is_stored(
    app: Any, db: Database, tenant: Tenant
) -> None:
    mine, theirs = tenant.vehicles["Electric"], tenant.vehicles["Thermic"]
    await own(app, ALICE, mine.id)
    await own(app, BOB, theirs.id)
    async with browser_http(app) as bob:
        await sign_in_user(bob, BOB)
        bobs_callback = await new_callback(bob, "bob's hook")
        sent = await horn(bob, theirs.id, bobs_callback)
        assert sent.status_code == 303, sent.text
        bobs_timeline = sent.headers["location"]
    async with browser_http(app) as alice:
        await sign_in_user(alice, ALICE)
        alices_callback = await new_callback(alice, "alice's hook")
        before = await stored_remotes(db)
        vehicle = await alice.get(f"/console/user/vehicles/{theirs.id}")
        assert vehicle.status_code == 404
        assert theirs.vin not in vehicle.text
        to_bobs_car = await horn(
            alice, theirs.id, alices_callback, f"/console/user/vehicles/{mine.id}"
        )
        assert to_bobs_car.status_code == 404
        through_bobs_hook = await horn(alice, mine.id, bobs_callback)
        assert through_bobs_hook.status_code == 404
        assert "no callback" in through_bobs_hook.text
        timeline = await alice.get(path_of(bobs_timeline))
        assert timeline.status_code == 404
        events = await alice.get(path_of(bobs_timeline) + "/events")
        assert events.status_code == 404
        page = await alice.get("/console/user/callbacks")
        assert "bob&#39;s hook" not in page.text
        assert "bob's hook" not in page.text
        pause = await alice.post(
            f"/console/user/callbacks/{bobs_callback}/status",
            data={"csrf": csrf_of(page), "status": "Paused"},
        )
        assert pause.status_code == 404
    assert await stored_remotes(db) == before
    async with browser_http(app) as bob:
        await sign_in_user(bob, BOB)
        listed = await bob.get("/console/user/callbacks")
    assert "Pause bob" in listed.text, "bob's callback is still Running"


async def test_a_horn_from_the_form_is_the_user_faces_remote_with_a_live_timeline(
    app: Any, db: Database, tenant: Tenant
) -> None:
    mine = tenant.vehicles["Electric"]
    await own(app, ALICE, mine.id)
    async with browser_http(app) as client:
        await sign_in_user(client, ALICE)
        callback_id = await new_callback(client, "home")
        sent = await horn(client, mine.id, callback_id)
        assert sent.status_code == 303, sent.text
        timeline = await client.get(path_of(sent.headers["location"]))
        vehicle = await client.get(f"/console/user/vehicles/{mine.id}")
    assert timeline.status_code == 200
    assert "Horn" in timeline.text
    assert "Accepted" in timeline.text
    assert path_of(sent.headers["location"]) in vehicle.text, "among the latest remotes"
    async with db.read() as conn:
        row = (await conn.execute(select(remotes))).one()
    assert row.type == "Horn"
    assert row.client_id == "keyfob-console-clientsB2CPeugeot"
    async with db.read() as conn:
        user = await get_user_by_login(conn, ALICE)
    assert user is not None
    assert row.user_id == user.id


async def test_a_callback_that_another_browser_started_or_a_replayed_code_signs_nobody_in(
    app: Any, tenant: Tenant
) -> None:
    await own(app, ALICE, tenant.vehicles["Electric"].id)
    async with browser_http(app) as victim, browser_http(app) as attacker:
        planted = await to_callback(attacker, ALICE)  # a code for the attacker's own flow
        await victim.get("/console/user/login")
        refused = await victim.get(path_of(planted))
        assert refused.status_code == 403
        assert (await victim.get("/console/user/")).status_code == 303
        signed = await attacker.get(path_of(planted))
        assert signed.status_code == 303
        again = await attacker.get(path_of(planted))
        assert again.status_code == 403, "the sign-in was finished; its state is spent"


async def test_signing_out_revokes_the_grant_so_a_copied_cookie_is_worth_nothing(
    app: Any, tenant: Tenant
) -> None:
    await own(app, ALICE, tenant.vehicles["Electric"].id)
    async with browser_http(app) as client:
        await sign_in_user(client, ALICE)
        home = await client.get("/console/user/")
        copied = dict(client.cookies)
        out = await client.post("/console/user/logout", data={"csrf": csrf_of(home)})
        assert out.status_code == 303
    async with browser_http(app) as thief:
        thief.cookies.update(copied)
        answer = await thief.get("/console/user/")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("/console/login")


async def test_a_remote_form_without_the_sessions_csrf_token_sends_nothing(
    app: Any, db: Database, tenant: Tenant
) -> None:
    mine = tenant.vehicles["Electric"]
    await own(app, ALICE, mine.id)
    async with browser_http(app) as client:
        await sign_in_user(client, ALICE)
        callback_id = await new_callback(client, "home")
        forged = await client.post(
            f"/console/user/vehicles/{mine.id}/remotes",
            data={"csrf": "guessed", "action": "horn", "callback": callback_id},
        )
    assert forged.status_code == 403
    assert await stored_remotes(db) == 0
