"""An app running the whole vehicle side in process: dispatcher, in-memory link, simulated fleet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from conftest import ALL_TYPES, Tenant, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import Database


@asynccontextmanager
async def embedded(
    db: Database, roles: Sequence[Any] = (vehicle_role,), login: str = "alice", **settings: Any
) -> AsyncIterator[tuple[Any, Tenant]]:
    """A tenant whose vehicles are simulated and reachable; the tenant is created first, so
    its vehicles exist when the fleet starts. ``roles``: the vehicle side alone by default."""
    values: dict[str, Any] = {"sim_speed": 0.0, "vehicles": 0}
    values.update(settings)
    app = create_app(
        make_settings(db.url, **values), database=db, clock=utcnow, announce=lambda _: None
    )
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, login, utcnow())
    await tenant.http.aclose()
    app = create_app(
        make_settings(db.url, **values),
        database=db,
        clock=utcnow,
        roles=list(roles),
        announce=lambda _: None,
    )
    async with app.router.lifespan_context(app):
        tenant.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://keyfob.test",
            auth=(tenant.login, tenant.password),
            params={"client_id": tenant.client_id},
        )
        yield app, tenant
    await tenant.http.aclose()


async def callback_for_all(tenant: Tenant) -> str:
    answer = await tenant.http.post(
        f"{tenant.fleet}/remote/callbacks",
        json={
            "callback": {"webhook": {"target": "https://hooks.example.com/k", "name": "k"}},
            "remoteTypes": ALL_TYPES,
        },
    )
    assert answer.status_code == 200, answer.text
    callback_id: str = answer.json()["callbackId"]
    return callback_id


async def until_done(tenant: Tenant, path: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll a remote until its Done event; fail with its history if it never comes."""
    body: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        body = (await tenant.http.get(path)).json()
        if body.get("events") and body["events"][-1]["type"] == "Done":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"remote never finished: {body}")
