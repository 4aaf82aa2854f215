"""Managing callbacks in the console: create, edit, pause and resume, rotate the secret; each
through the API's own parser and services, what the API then reads back, and another tenant's
callback out of reach."""

from __future__ import annotations

import re
from typing import Any

from conftest import CALLBACK, Tenant, create_callback
from console_support import browser_http, csrf_of, sign_in
from keyfob.callbacks.service import get_callback
from keyfob.store.engine import Database

SECRET = re.compile(r'<code class="secret" id="secret">([^<]+)</code>')


def fields(**extra: str) -> dict[str, str]:
    return {
        "label": "ops",
        "callback.webhook.name": "ops hook",
        "callback.webhook.target": "https://hooks.example.com/ops",
        "retryPolicy.policy": "None",
        "type.Doors": "on",
        "type.Horn": "on",
        **extra,
    }


async def api_callback(tenant: Tenant, callback_id: str) -> dict[str, Any]:
    answer = await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{callback_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_a_callback_created_in_the_console_is_the_apis(app: Any, tenant: Tenant) -> None:
    page = f"/console/fleets/{tenant.fleet_id}/callbacks"
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        csrf = csrf_of(await client.get(page))
        created = await client.post(page, data={"csrf": csrf, **fields()})
    assert created.status_code == 200
    secret = SECRET.search(created.text)
    assert secret
    assert secret.group(1).startswith("whsec_")
    listed = await tenant.http.get(f"{tenant.fleet}/remote/callbacks")
    (callback,) = listed.json()["_embedded"]["callbacks"]
    assert callback["subscribe"]["callback"]["webhook"]["target"] == "https://hooks.example.com/ops"
    assert sorted(callback["subscribe"]["remoteTypes"]) == ["Doors", "Horn"]
    assert callback["subscribe"]["retryPolicy"]["policy"] == "None"
    assert callback["subscribe"]["label"] == "ops"


async def test_the_apis_refusal_of_a_callback_is_shown_at_the_field(
    app: Any, tenant: Tenant
) -> None:
    page = f"/console/fleets/{tenant.fleet_id}/callbacks"
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        csrf = csrf_of(await client.get(page))
        answer = await client.post(
            page,
            data={"csrf": csrf, **fields(**{"callback.webhook.target": "ftp://hooks.example.com"})},
        )
        no_types = await client.post(
            page, data={"csrf": csrf, **fields(**{"type.Doors": "", "type.Horn": ""})}
        )
    assert answer.status_code == 400
    found = re.search(r'<p class="field-error" id="err-new-target">([^<]*)</p>', answer.text)
    assert found
    assert "the scheme &#39;ftp&#39; is not allowed" in found.group(1)
    assert 'value="ftp://hooks.example.com"' in answer.text
    assert no_types.status_code == 400
    assert 'id="err-new-types"' in no_types.text
    listed = await tenant.http.get(f"{tenant.fleet}/remote/callbacks")
    assert listed.json()["total"] == 0


async def test_editing_keeps_what_the_form_does_not_show(app: Any, tenant: Tenant) -> None:
    callback_id = await create_callback(tenant, {**CALLBACK, "batchNotify": {"size": 10}})
    page = f"/console/fleets/{tenant.fleet_id}/callbacks/{callback_id}"
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        shown = await client.get(page)
        assert 'value="https://hooks.example.com/keyfob"' in shown.text
        saved = await client.post(
            page,
            data={
                "csrf": csrf_of(shown),
                **fields(**{"callback.webhook.target": "https://hooks.example.com/new"}),
            },
        )
        assert saved.status_code == 303
        after = await client.get(saved.headers["location"])
    assert "Saved." in after.text
    subscribe = (await api_callback(tenant, callback_id))["subscribe"]
    assert subscribe["callback"]["webhook"]["target"] == "https://hooks.example.com/new"
    assert sorted(subscribe["remoteTypes"]) == ["Doors", "Horn"]
    assert subscribe["batchNotify"]["size"] == 10


async def test_pause_resume_and_rotate_the_secret(app: Any, db: Database, tenant: Tenant) -> None:
    callback_id = await create_callback(tenant)
    page = f"/console/fleets/{tenant.fleet_id}/callbacks/{callback_id}"
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        csrf = csrf_of(await client.get(page))
        paused = await client.post(f"{page}/status", data={"csrf": csrf, "status": "Paused"})
        assert paused.status_code == 303
        assert (await api_callback(tenant, callback_id))["status"] == "Paused"
        assert "Resume" in (await client.get(page)).text
        resumed = await client.post(f"{page}/status", data={"csrf": csrf, "status": "Running"})
        assert resumed.status_code == 303
        assert (await api_callback(tenant, callback_id))["status"] == "Running"
        rotated = await client.post(f"{page}/secret", data={"csrf": csrf})
    assert rotated.status_code == 200
    secret = SECRET.search(rotated.text)
    assert secret
    async with db.read() as conn:
        callback = await get_callback(conn, fleet_id=tenant.fleet_id, callback_id=callback_id)
    assert len(callback.secrets) == 2  # the new one, and the previous one for 24 hours


async def test_another_tenants_callback_cannot_be_changed(
    app: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await create_callback(other_tenant)
    before = await api_callback(other_tenant, theirs)
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        csrf = csrf_of(await client.get(f"/console/fleets/{tenant.fleet_id}/callbacks"))
        for fleet in (tenant.fleet_id, other_tenant.fleet_id):
            page = f"/console/fleets/{fleet}/callbacks/{theirs}"
            for path, data in (
                (page, fields()),
                (f"{page}/status", {"status": "Paused"}),
                (f"{page}/secret", {}),
            ):
                answer = await client.post(path, data={"csrf": csrf, **data})
                assert answer.status_code == 404, path
        created = await client.post(
            f"/console/fleets/{other_tenant.fleet_id}/callbacks", data={"csrf": csrf, **fields()}
        )
        assert created.status_code == 404
    assert await api_callback(other_tenant, theirs) == before
    listed = await other_tenant.http.get(f"{other_tenant.fleet}/remote/callbacks")
    assert listed.json()["total"] == 1
