"""The user face end to end: POST a remote on ``/connectedcar/v4`` → dispatcher → in-memory
link → simulated car → ``Message`` at a real webhook receiver.

Real clients wait at most 10 s for a remote's Done message and read only single messages:
an awake car answers well inside that, and nothing is batched while the receiver keeps up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete

from conftest import Tenant, make_settings, make_tenant
from delivery_support import Receiver, receiver
from keyfob.api.app import create_app
from keyfob.auth.user_models import user_vehicles
from keyfob.callbacks.user_service import Owner
from keyfob.kit.clock import utcnow
from keyfob.remotes.service import get_user_remote
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from user_face import V4
from user_support import UserLogin, make_user, user_http

SETTINGS: dict[str, Any] = {
    "sim_speed": 0.0,
    "vehicles": 0,
    "delivery": {"allow_private_webhooks": True},
}


@asynccontextmanager
async def prepared(db: Database) -> AsyncIterator[Tenant]:
    """A partner's fleet, made before the simulated cars start (they are read at start)."""
    app = create_app(make_settings(db.url, **SETTINGS), database=db, announce=lambda _: None)
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, "alice", utcnow())
    await tenant.http.aclose()
    yield tenant


@asynccontextmanager
async def running(db: Database) -> AsyncIterator[Any]:
    app = create_app(
        make_settings(db.url, **SETTINGS),
        database=db,
        clock=utcnow,
        roles=[vehicle_role, delivery_role],
        announce=lambda _: None,
    )
    async with app.router.lifespan_context(app):
        yield app


async def done_message(hook: Receiver, remote_id: str, timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for request in hook.requests:
            body = request["json"]
            assert isinstance(body, dict), "nothing waits, so no message is batched"
            event = body["remoteEvent"]
            if event["remoteActionId"] == remote_id and event["eventStatus"]["type"] == "Done":
                return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"no Done message within {timeout} s: {hook.bodies}")


async def test_a_door_locked_through_the_user_face_reports_done_success_in_time(
    db: Database,
) -> None:
    async with prepared(db) as tenant, running(db) as app, receiver() as hook:
        vehicle = tenant.vehicles["Electric"]
        user: UserLogin = await make_user(app.state.ctx, vehicle_ids=[vehicle.id])
        async with user_http(app, user) as http:
            created = await http.post(
                f"{V4}/user/callbacks",
                json={
                    "label": "ha",
                    "type": ["Remote"],
                    "callback": {"webhook": {"name": "ha", "target": hook.url}},
                },
            )
            assert created.status_code == 202, created.text
            cbid = created.json()["callbackId"]
            path = f"{V4}/user/vehicles/{vehicle.id}/callbacks/{cbid}/remotes"
            started = asyncio.get_running_loop().time()
            posted = await http.post(path, json={"door": {"state": "Locked"}})
            assert posted.status_code == 202, posted.text
            rid = posted.json()["remoteActionId"]
            done = await done_message(hook, rid, timeout=10.0)
            elapsed = asyncio.get_running_loop().time() - started
            read = await http.get(f"{path}/{rid}")
    assert_conforms("b2c-webhook", "Message", done)
    assert done["remoteEvent"]["eventStatus"]["status"] in ("Success", "AlreadyDone")
    assert done["callbackId"] == cbid
    assert elapsed < 10.0
    statuses = [
        b["remoteEvent"]["eventStatus"]["status"]
        for b in hook.bodies
        if b["remoteEvent"]["remoteActionId"] == rid
    ]
    assert statuses[0] == "Accepted"
    assert "SentToVehicle" in statuses
    sequences = [r["headers"]["keyfob-sequence"] for r in hook.requests]
    assert sequences == [str(n) for n in range(1, len(statuses) + 1)]
    assert read.json()["status"] == done["remoteEvent"]["eventStatus"]["status"]
    assert_conforms("b2c-api", "RemoteAction", read.json())


async def test_a_car_unlinked_from_its_user_before_dispatch_fails_missing_rights(
    db: Database,
) -> None:
    async with prepared(db) as tenant:
        vehicle = tenant.vehicles["Electric"]
        app = create_app(make_settings(db.url, **SETTINGS), database=db, announce=lambda _: None)
        async with app.router.lifespan_context(app), receiver() as hook:
            user = await make_user(app.state.ctx, vehicle_ids=[vehicle.id])
            async with user_http(app, user) as http:
                created = await http.post(
                    f"{V4}/user/callbacks",
                    json={"callback": {"webhook": {"name": "ha", "target": hook.url}}},
                )
                cbid = created.json()["callbackId"]
                posted = await http.post(
                    f"{V4}/user/vehicles/{vehicle.id}/callbacks/{cbid}/remotes",
                    json={"horn": {"state": "Activated"}},
                )
                assert posted.status_code == 202, posted.text
        async with db.transaction() as conn:
            await conn.execute(
                delete(user_vehicles).where(
                    user_vehicles.c.user_id == user.user_id,
                    user_vehicles.c.vehicle_id == vehicle.id,
                )
            )
        rid = posted.json()["remoteActionId"]
        owner = Owner(user.client_id, user.user_id)
        async with running(db):
            for _ in range(300):
                async with db.read() as conn:
                    remote, events = await get_user_remote(
                        conn, owner=owner, vehicle_id=vehicle.id, callback_id=cbid, remote_id=rid
                    )
                if events[-1].type == "Done":
                    break
                await asyncio.sleep(0.03)
    assert [(e.status, e.failure_cause) for e in events] == [
        ("Accepted", None),
        ("Failed", "MissingRights"),
    ]
    assert remote.status == "Failed"
