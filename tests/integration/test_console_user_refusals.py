"""The console for end users, when something is refused or moved: consent denied, the wrong
address, a fleet page, the API's own refusals of a remote form (nothing is stored by any of
them), and a server whose public URL changed."""

from __future__ import annotations

from typing import Any

from conftest import Tenant, make_settings
from console_support import browser_http, csrf_of
from console_user_support import (
    ALICE,
    horn,
    new_callback,
    own,
    path_of,
    sign_in_user,
    start,
    stored_remotes,
)
from keyfob.api.app import create_app
from keyfob.auth.clients import get_client
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from oauth_support import PASSWORD, submit


async def test_denying_consent_comes_back_to_the_console_signed_out_and_says_why(
    app: Any, tenant: Tenant
) -> None:
    await own(app, ALICE, tenant.vehicles["Electric"].id)
    async with browser_http(app) as client:
        authorize = await client.get(path_of((await start(client)).headers["location"]))
        consent = await submit(client, authorize, login=ALICE, password=PASSWORD)
        denied = await submit(client, consent, decision="deny")
        back = await client.get(path_of(denied.headers["location"]))
        home = await client.get("/console/user/")
    assert back.status_code == 401
    assert "You were not signed in: the user did not allow access." in back.text
    assert home.status_code == 303


async def test_signing_in_from_another_address_starts_at_the_registered_one(app: Any) -> None:
    """The code only comes back to public_url: sign-in must start there, where the session
    cookie with the PKCE verifier will be read."""
    async with browser_http(app, base_url="http://127.0.0.1:8080") as client:
        answer = await client.get("/console/user/login")
    assert answer.status_code == 303
    assert answer.headers["location"] == "https://keyfob.test/console/user/login"
    assert "set-cookie" not in answer.headers


async def test_a_driver_on_a_fleet_page_lands_on_their_own_pages(app: Any, tenant: Tenant) -> None:
    await own(app, ALICE, tenant.vehicles["Electric"].id)
    async with browser_http(app) as client:
        await sign_in_user(client, ALICE)
        fleet = await client.get(f"/console/fleets/{tenant.fleet_id}")
        assert fleet.headers["location"].endswith("/console/login")
        login = await client.get("/console/login")
    assert login.status_code == 303
    assert login.headers["location"].endswith("/console/user/")


async def test_the_api_refusals_of_a_remote_form_show_on_the_page_and_store_nothing(
    app: Any, db: Database, tenant: Tenant
) -> None:
    mine = tenant.vehicles["Electric"]
    await own(app, ALICE, mine.id)
    async with browser_http(app) as client:
        await sign_in_user(client, ALICE)
        callback_id = await new_callback(client, "home")
        page = await client.get(f"/console/user/vehicles/{mine.id}")
        wrong = await client.post(
            f"/console/user/vehicles/{mine.id}/remotes",
            data={
                "csrf": csrf_of(page),
                "action": "horn",
                "callback": callback_id,
                "horn.state": "Loud",
            },
        )
        assert wrong.status_code == 400, wrong.text
        assert 'id="err-f-horn-state"' in wrong.text, "the refusal is under the field"
        listed = await client.get("/console/user/callbacks")
        paused = await client.post(
            f"/console/user/callbacks/{callback_id}/status",
            data={"csrf": csrf_of(listed), "status": "Paused"},
        )
        assert paused.status_code == 303
        refused = await horn(client, mine.id, callback_id)
        assert refused.status_code == 409, refused.text
        assert "PUT its status to Running" in refused.text
        immobilize = await client.post(
            f"/console/user/vehicles/{mine.id}/remotes",
            data={"csrf": csrf_of(page), "action": "immobilization", "callback": callback_id},
        )
        assert immobilize.status_code == 400
    assert await stored_remotes(db) == 0


async def test_a_changed_public_url_moves_the_console_clients_redirect_uri(
    db: Database, clock: FakeClock, tenant: Tenant, app: Any
) -> None:
    await own(app, ALICE, tenant.vehicles["Electric"].id)
    async with browser_http(app) as client:
        await sign_in_user(client, ALICE)  # registers https://keyfob.test/console/user/callback
    moved = create_app(
        make_settings(db.url, public_url="https://cars.example.org"),
        database=db,
        clock=clock,
        announce=lambda _: None,
    )
    async with (
        moved.router.lifespan_context(moved),
        browser_http(moved, base_url="https://cars.example.org") as client,
    ):
        sent = await start(client)
        assert (
            "redirect_uri=https%3A%2F%2Fcars.example.org%2Fconsole%2Fuser%2Fcallback"
            in (sent.headers["location"])
        )
        await sign_in_user(client, ALICE)
        assert (await client.get("/console/user/")).status_code == 200
    async with db.read() as conn:
        found = await get_client(conn, "keyfob-console-clientsB2CPeugeot")
    assert found is not None
    assert found.redirect_uris == ("https://cars.example.org/console/user/callback",)
