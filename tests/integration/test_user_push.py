"""Push callbacks of the user face (§3.2) through a local stand-in of FCM and its token
endpoint: the basic-notification shape with the ``Message`` in ``data.mph_message``, a bearer
from the service-account key kept until it expires, and device tokens FCM reports unregistered
removed, the callback deleted when none is left. No network beyond this machine."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from test_user_delivery import record
from test_user_end_to_end import prepared

from conftest import make_settings
from fcm_support import Fcm, fcm_stand_in
from keyfob.api.app import create_app
from keyfob.config import PushSettings
from keyfob.kit.clock import FakeClock, utcnow
from keyfob.notifications.push_channel import PushChannel, load_push_config
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.tables import delivery_attempts, notifications
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from user_face import V4, Stage, user_stage
from user_support import make_user, user_http


class Seconds:
    """The push channel's own clock (for the bearer's expiry), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def push_stage(
    db: Database, clock: FakeClock, folder: Path
) -> AsyncIterator[tuple[Stage, Fcm, Seconds]]:
    async with user_stage(db, clock) as stage, fcm_stand_in(folder) as fcm:
        stage.ctx.settings.push = PushSettings(service_account_file=fcm.key_file, fcm_url=fcm.url)
        seconds = Seconds()
        channel = PushChannel(load_push_config(fcm.key_file, fcm_url=fcm.url), now=seconds)
        stage.work = DeliveryWorker(
            db, stage.work.sender, clock=clock, options=WorkerOptions(), push=channel
        )
        try:
            yield stage, fcm, seconds
        finally:
            await channel.close()


async def push_callback(stage: Stage, devices: list[str], **push: Any) -> str:
    body = {"label": "phone", "callback": {"pushnotif": {"devices": devices, **push}}}
    answer = await stage.http.post(f"{V4}/user/callbacks", json=body)
    assert answer.status_code == 202, answer.text
    cbid: str = answer.json()["callbackId"]
    return cbid


def carried(message: dict[str, Any]) -> dict[str, Any]:
    """The ``Message`` inside an FCM message's ``data.mph_message``."""
    found: dict[str, Any] = json.loads(base64.b64decode(message["data"]["mph_message"]))
    return found


async def test_each_message_reaches_every_device_in_the_basic_notification_shape(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    async with push_stage(db, clock, tmp_path) as (stage, fcm, seconds):
        cbid = await push_callback(
            stage,
            ["phone-a", "phone-b"],
            attributes=[
                {"key": "car", "value": "$Vin"},
                {"key": "deliveryPriority", "value": "high"},
                {"type": "Body", "key": "status", "value": "$RemoteStatus"},
            ],
        )
        rid = await stage.remote(
            cbid,
            {
                "label": "front door",
                "door": {"state": "Locked"},
                "callbackAttributes": {"pushnotif": [{"key": "room", "value": "hall"}]},
            },
        )
        await stage.drain()
        await record(stage, rid, ("Pending", "SentToVehicle"))
        await stage.drain()
        seconds.now += 3600  # the first bearer has expired
        await record(stage, rid, ("Done", "Success"), done=True)
        await stage.drain()
        async with db.read() as conn:
            logged = (
                (
                    await conn.execute(
                        select(delivery_attempts.c.outcome).where(
                            delivery_attempts.c.callback_id == cbid
                        )
                    )
                )
                .scalars()
                .all()
            )
    assert fcm.refused == []
    assert [m["token"] for m in fcm.sent] == ["phone-a", "phone-b"] * 3
    vin = stage.tenant.vehicles["Electric"].vin
    for sent in fcm.sent:
        message = carried(sent)
        assert_conforms("b2c-webhook", "Message", message)
        assert message["callbackId"] == cbid
        assert message["remoteEvent"]["remoteActionId"] == rid
        assert message["attributes"] == [
            {"key": "status", "value": message["remoteEvent"]["eventStatus"]["status"]}
        ]
        assert set(sent["data"]) == {"car", "room", "mph_message"}
        assert sent["data"]["room"] == "hall"
        assert sent["data"]["car"] == vin
        assert sent["notification"]["title"] == "front door"
        assert sent["android"] == {"priority": "high"}
    statuses = [carried(m)["remoteEvent"]["eventStatus"]["status"] for m in fcm.sent[::2]]
    assert statuses == ["Accepted", "SentToVehicle", "Success"]
    assert fcm.sent[-1]["notification"]["body"] == "Doors: Success"
    assert fcm.token_requests == 2, "one bearer until it expired, then a new one"
    assert logged == ["delivered"] * 3


async def test_unregistered_tokens_are_removed_and_the_last_one_deletes_the_callback(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    async with push_stage(db, clock, tmp_path) as (stage, fcm, _):
        cbid = await push_callback(stage, ["phone-kept", "phone-gone"])
        fcm.unregistered.add("phone-gone")
        await stage.remote(cbid)
        await stage.drain()
        after_one = await stage.http.get(f"{V4}/user/callbacks/{cbid}")
        fcm.unregistered.add("phone-kept")
        rid = await stage.remote(cbid, {"horn": {"state": "Activated"}})
        await record(stage, rid, ("Pending", "SentToVehicle"))
        await stage.drain()
        gone = await stage.http.get(f"{V4}/user/callbacks/{cbid}")
        async with db.read() as conn:
            states = (
                (
                    await conn.execute(
                        select(notifications.c.state).where(notifications.c.callback_id == cbid)
                    )
                )
                .scalars()
                .all()
            )
            errors = (
                (
                    await conn.execute(
                        select(delivery_attempts.c.error_class)
                        .where(delivery_attempts.c.callback_id == cbid)
                        .order_by(delivery_attempts.c.id)
                    )
                )
                .scalars()
                .all()
            )
    assert after_one.json()["subscribe"]["callback"]["pushnotif"]["devices"] == ["phone-kept"]
    assert [m["token"] for m in fcm.sent] == ["phone-kept"]
    assert gone.status_code == 404
    assert sorted(states) == ["delivered", "dropped", "dropped"]
    assert errors == [None, "unregistered"]


async def test_push_is_offered_only_where_fcm_is_configured(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        answer = await stage.http.post(
            f"{V4}/user/callbacks", json={"callback": {"pushnotif": {"devices": ["phone"]}}}
        )
    assert answer.status_code == 400
    assert "no push (FCM) configuration" in answer.json()["message"]


async def test_a_door_locked_reports_done_by_push_through_the_running_roles(
    db: Database, tmp_path: Path
) -> None:
    """``serve``'s roles as they run, the push channel built from the ``push`` settings."""
    async with prepared(db) as tenant, fcm_stand_in(tmp_path) as fcm:
        settings = make_settings(
            db.url,
            sim_speed=0.0,
            vehicles=0,
            push={"service_account_file": str(fcm.key_file), "fcm_url": fcm.url},
        )
        app = create_app(
            settings,
            database=db,
            clock=utcnow,
            roles=[vehicle_role, delivery_role],
            announce=lambda _: None,
        )
        async with app.router.lifespan_context(app):
            vehicle = tenant.vehicles["Electric"]
            user = await make_user(app.state.ctx, vehicle_ids=[vehicle.id])
            async with user_http(app, user) as http:
                created = await http.post(
                    f"{V4}/user/callbacks",
                    json={"callback": {"pushnotif": {"devices": ["phone"]}}},
                )
                assert created.status_code == 202, created.text
                cbid = created.json()["callbackId"]
                posted = await http.post(
                    f"{V4}/user/vehicles/{vehicle.id}/callbacks/{cbid}/remotes",
                    json={"door": {"state": "Locked"}},
                )
                assert posted.status_code == 202, posted.text
                async with asyncio.timeout(10):
                    while not any(
                        carried(m)["remoteEvent"]["eventStatus"]["type"] == "Done" for m in fcm.sent
                    ):
                        await asyncio.sleep(0.02)
    statuses = [carried(m)["remoteEvent"]["eventStatus"]["status"] for m in fcm.sent]
    assert statuses[0] == "Accepted"
    assert statuses[-1] in ("Success", "AlreadyDone")
    assert fcm.refused == []


async def test_a_test_notification_reaches_the_devices(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    async with push_stage(db, clock, tmp_path) as (stage, fcm, _):
        cbid = await push_callback(stage, ["phone"])
        answer = await stage.http.post(f"{V4}/user/callbacks/{cbid}/test")
    assert answer.status_code == 200, answer.text
    assert answer.json()["delivered"] is True
    (sent,) = fcm.sent
    assert carried(sent)["remoteEvent"]["remoteActionId"] == "0" * 32
