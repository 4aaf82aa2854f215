"""The console over HTTP: sign-in, the session cookie and CSRF, tenant scoping, the vehicle
list, the remote forms (the API's refusals at the field), and the delivery log with replay.

Another tenant's fleet, vehicle, callback and remote ids are tried through every page: each
is the 404 the API answers, and nothing is stored.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from conftest import Tenant, create_callback
from console_support import browser_http, csrf_of, send_remote, sign_in, vehicle_path
from keyfob.kit.clock import FakeClock
from keyfob.notifications.models import notifications
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.models import vehicle_states
from keyfob.vehicles.service import create_vehicle
from keyfob.vocabulary import Motorization


async def remotes_of(tenant: Tenant, vehicle_id: str, callback_id: str) -> list[dict[str, Any]]:
    path = f"{tenant.fleet}/vehicles/{vehicle_id}/callbacks/{callback_id}/remotes"
    answer = await tenant.http.get(path)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json().get("_embedded", {}).get("remoteActions", [])
    return found


async def test_signing_in_sets_a_locked_down_session_and_lands_on_the_fleet(
    app: Any, tenant: Tenant
) -> None:
    async with browser_http(app) as client:
        page = await client.get("/console/login")
        policy = page.headers["content-security-policy"]
        assert "unsafe-inline" not in policy
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        answer = await sign_in(client, tenant)
        cookie = answer.headers["set-cookie"]
        assert "httponly" in cookie.lower()
        assert "samesite=strict" in cookie.lower()
        assert "secure" in cookie.lower()  # public_url is https: a proxy terminates TLS
        home = await client.get("/console/")
        assert home.status_code == 303
        assert home.headers["location"].endswith(f"/console/fleets/{tenant.fleet_id}")
        fleet = await client.get(home.headers["location"])
    assert fleet.status_code == 200
    for vehicle in tenant.vehicles.values():
        assert vehicle.vin in fleet.text


async def test_the_cookie_is_secure_behind_a_tls_proxy(app: Any) -> None:
    """The proxy speaks plain HTTP to keyfob, but public_url says browsers use HTTPS."""
    async with browser_http(app, base_url="http://keyfob.test") as client:
        answer = await client.get("/console/login")
    assert "secure" in answer.headers["set-cookie"].lower()


async def test_a_wrong_password_is_refused_and_signs_nobody_in(app: Any, tenant: Tenant) -> None:
    async with browser_http(app) as client:
        page = await client.get("/console/login")
        answer = await client.post(
            "/console/login",
            data={
                "csrf": csrf_of(page),
                "login": tenant.login,
                "password": "not the password",
                "client_id": tenant.client_id,
            },
        )
        assert answer.status_code == 401
        assert "The login, password or client id is wrong." in answer.text
        assert "set-cookie" not in answer.headers
        still = await client.get(f"/console/fleets/{tenant.fleet_id}")
    assert still.status_code == 303
    assert still.headers["location"].endswith("/console/login")


async def test_forms_without_the_sessions_csrf_token_are_refused(app: Any, tenant: Tenant) -> None:
    callback_id = await create_callback(tenant)
    async with browser_http(app) as client:
        await client.get("/console/login")
        forged_login = await client.post(
            "/console/login",
            data={
                "csrf": "x",
                "login": tenant.login,
                "password": tenant.password,
                "client_id": tenant.client_id,
            },
        )
        assert forged_login.status_code == 403
        await sign_in(client, tenant)
        path = vehicle_path(tenant)
        forged = await client.post(
            f"{path}/remotes",
            data={
                "csrf": "guessed",
                "action": "door",
                "callback": callback_id,
                "door.state": "Locked",
            },
        )
    assert forged.status_code == 403
    assert await remotes_of(tenant, tenant.vehicles["Electric"].id, callback_id) == []


async def test_signing_out_ends_the_session(app: Any, tenant: Tenant) -> None:
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        fleet = await client.get(f"/console/fleets/{tenant.fleet_id}")
        out = await client.post("/console/logout", data={"csrf": csrf_of(fleet)})
        assert out.status_code == 303
        after = await client.get(f"/console/fleets/{tenant.fleet_id}")
    assert after.status_code == 303
    assert after.headers["location"].endswith("/console/login")


async def test_another_tenants_ids_are_404_on_every_page(
    app: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await create_callback(tenant)
    theirs = await create_callback(other_tenant)
    their_vehicle = other_tenant.vehicles["Electric"].id
    posted = await other_tenant.http.post(
        f"{other_tenant.fleet}/vehicles/{their_vehicle}/callbacks/{theirs}/remotes",
        json={"horn": {"state": "Activated"}},
    )
    their_remote = posted.json()["remoteActionId"]
    fleet, other_fleet = tenant.fleet_id, other_tenant.fleet_id
    my_vehicle = tenant.vehicles["Electric"].id
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        for path in (
            f"/console/fleets/{other_fleet}",
            f"/console/fleets/{other_fleet}/vehicles/{their_vehicle}",
            f"/console/fleets/{fleet}/vehicles/{their_vehicle}",
            f"/console/fleets/{other_fleet}/callbacks",
            f"/console/fleets/{other_fleet}/callbacks/{theirs}",
            f"/console/fleets/{fleet}/callbacks/{theirs}",
            f"/console/fleets/{other_fleet}/callbacks/{theirs}/log",
            f"/console/fleets/{fleet}/callbacks/{theirs}/log",
            f"/console/fleets/{other_fleet}/vehicles/{their_vehicle}/callbacks/{theirs}"
            f"/remotes/{their_remote}",
            f"/console/fleets/{other_fleet}/vehicles/{their_vehicle}/callbacks/{theirs}"
            f"/remotes/{their_remote}/events",
            f"/console/fleets/{fleet}/vehicles/{my_vehicle}/callbacks/{mine}"
            f"/remotes/{their_remote}",
        ):
            answer = await client.get(path)
            assert answer.status_code == 404, path
            assert "Not found" in answer.text
        csrf = csrf_of(await client.get(vehicle_path(tenant)))
        for target, callback in (
            (f"/console/fleets/{other_fleet}/vehicles/{their_vehicle}", theirs),
            (f"/console/fleets/{fleet}/vehicles/{their_vehicle}", mine),
            (f"/console/fleets/{fleet}/vehicles/{my_vehicle}", theirs),
        ):
            answer = await client.post(
                f"{target}/remotes",
                data={"csrf": csrf, "action": "door", "callback": callback, "door.state": "Locked"},
            )
            assert answer.status_code == 404, target
        replay = await client.post(
            f"/console/fleets/{other_fleet}/callbacks/{theirs}/replay",
            data={"csrf": csrf, "since": "2020-01-01T00:00:00Z"},
        )
        assert replay.status_code == 404
    assert await remotes_of(tenant, my_vehicle, mine) == []
    assert len(await remotes_of(other_tenant, their_vehicle, theirs)) == 1


async def test_the_vehicle_list_searches_by_vin_and_pages(
    app: Any, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    async with db.transaction() as conn:
        for index in range(55):
            await create_vehicle(
                conn,
                fleet_id=tenant.fleet_id,
                vin=f"VF3PAGE{index:010d}",
                motorization=Motorization.ELECTRIC.value,
                capabilities=capabilities_for(Motorization.ELECTRIC),
                now=clock(),
            )
        await conn.execute(
            update(vehicle_states)
            .where(vehicle_states.c.vehicle_id == tenant.vehicles["Hybrid"].id)
            .values(presence="asleep")
        )
    fleet = f"/console/fleets/{tenant.fleet_id}"
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        asleep = await client.get(fleet, params={"presence": "asleep"})
        unknown = await client.get(fleet, params={"presence": "dreaming"})
        first = await client.get(fleet)
        second = await client.get(fleet, params={"page": "2"})
        found = await client.get(fleet, params={"vin": "page0000000042"})
        bad = await client.get(fleet, params={"page": "zero"})
    vins = re.compile(r">(VF3[A-Z0-9]{14})</a>")
    assert len(vins.findall(first.text)) == 50
    assert "58 vehicles, page 1 of 2" in first.text
    assert len(vins.findall(second.text)) == 8
    assert not set(vins.findall(first.text)) & set(vins.findall(second.text))
    assert vins.findall(found.text) == ["VF3PAGE0000000042"]
    assert "Wake-ups this month" in first.text
    assert bad.status_code == 400
    assert vins.findall(asleep.text) == [tenant.vehicles["Hybrid"].vin]
    assert "1 vehicle, asleep." in asleep.text
    assert unknown.status_code == 400


async def test_a_remote_form_sends_the_apis_body_and_shows_its_timeline(
    app: Any, tenant: Tenant
) -> None:
    callback_id = await create_callback(tenant)
    path = vehicle_path(tenant)
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        answer = await send_remote(client, path, "door", callback_id, **{"door.state": "Locked"})
        assert answer.status_code == 303, answer.text
        timeline = await client.get(answer.headers["location"])
        again = await client.get(path)
    assert timeline.status_code == 200
    assert f'href="{answer.headers["location"]}">Doors</a> Pending · Accepted' in again.text
    assert "Pending · Accepted" in timeline.text
    stored = await remotes_of(tenant, tenant.vehicles["Electric"].id, callback_id)
    assert [r["remote"] for r in stored] == [{"door": {"state": "Locked"}}]
    assert stored[0]["remoteActionId"] in answer.headers["location"]


async def test_the_apis_validation_errors_are_shown_at_their_field(
    app: Any, tenant: Tenant
) -> None:
    callback_id = await create_callback(tenant)
    path = vehicle_path(tenant)
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        answer = await send_remote(
            client,
            path,
            "charging",
            callback_id,
            **{"charging.schedule.nextDelayedTime": "tomorrow night"},
        )
        empty = await send_remote(client, path, "charging", callback_id)
        low = await send_remote(
            client, path, "stolen", callback_id, **{"stolen.trackingPeriod.running": "2"}
        )
    assert answer.status_code == 400
    field = re.search(
        r'<p class="field-error" id="err-f-charging-schedule-nextDelayedTime">([^<]*)</p>',
        answer.text,
    )
    assert field, answer.text
    assert "must be an RFC 3339 timestamp" in field.group(1)
    assert "&#39;tomorrow night&#39;" in field.group(1)
    assert 'value="tomorrow night"' in answer.text  # what was typed is kept
    assert empty.status_code == 400
    assert 'id="e-charging"' in empty.text
    assert "must contain at least one of" in empty.text
    assert re.search(r'id="err-f-stolen-trackingPeriod-running">must be at least 5', low.text)
    assert await remotes_of(tenant, tenant.vehicles["Electric"].id, callback_id) == []


async def test_the_delivery_log_shows_notifications_and_replays_failed_ones(
    app: Any, db: Database, tenant: Tenant
) -> None:
    callback_id = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    await tenant.http.post(
        f"{tenant.fleet}/vehicles/{vid}/callbacks/{callback_id}/remotes",
        json={"lights": {"on": True}},
    )
    async with db.transaction() as conn:  # as the worker leaves it after its last retry
        await conn.execute(
            update(notifications)
            .where(notifications.c.callback_id == callback_id)
            .values(state="abandoned", attempts=5)
        )
    log = f"/console/fleets/{tenant.fleet_id}/callbacks/{callback_id}"
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        listed = await client.get(f"/console/fleets/{tenant.fleet_id}/callbacks")
        assert log in listed.text
        page = await client.get(log)
        part = await client.get(f"{log}/log")
        assert "abandoned" in part.text
        assert "<html" not in part.text  # the tables alone, for the page's script
        assert "abandoned" in page.text
        assert "Pending · Accepted" in page.text
        replayed = await client.post(
            f"{log}/replay", data={"csrf": csrf_of(page), "since": "2000-01-01T00:00:00Z"}
        )
        assert replayed.status_code == 303
        after = await client.get(replayed.headers["location"])
    assert "Replayed 1 notification." in after.text
    deliveries = await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{callback_id}/deliveries")
    assert [d["state"] for d in deliveries.json()["_embedded"]["deliveries"]] == ["pending"]


@pytest.mark.parametrize("asset", ["console.css", "console.js"])
async def test_the_assets_ship_in_the_package(app: Any, asset: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
    ) as client:
        answer = await client.get(f"/console/static/{asset}")
    assert answer.status_code == 200
    assert len(answer.content) > 500
