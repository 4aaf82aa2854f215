"""WebSocket callbacks of the user face (§3.2, §5.3) at a real local WebSocket receiver.

keyfob dials the callback's target, keeps one connection for it and writes each ``Message``
(an array under backlog) as a text frame; a frame counts once the receiver has read it. A
receiver that goes silent or drops mid-batch loses nothing: what it did not read is retried on
a new connection on the fixed policy, a remote's messages still in order. Targets pass the
webhook address rule, at creation and on the address actually dialled.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import select
from test_user_delivery import record
from test_user_end_to_end import prepared, running

from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.listen import ws_receiver as listen_ws
from keyfob.notifications.resolver import SafeResolver
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.runtime.tables import callbacks, delivery_attempts, notifications
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from user_face import V4, Stage, user_stage
from user_support import make_user, user_http
from ws_support import WsReceiver, ws_receiver

LOCAL = TargetPolicy(allow_private=True)


@asynccontextmanager
async def ws_stage(
    db: Database, clock: FakeClock, channel: WebSocketChannel | None = None
) -> AsyncIterator[Stage]:
    """The user stage with a worker that also delivers to WebSocket callbacks."""
    async with user_stage(db, clock) as stage:
        channel = channel or WebSocketChannel(LOCAL, timeout=1.0)
        stage.work = DeliveryWorker(
            db, stage.work.sender, clock=clock, options=WorkerOptions(), websocket=channel
        )
        try:
            yield stage
        finally:
            await channel.close()


async def ws_callback(stage: Stage, target: str, **channel: Any) -> str:
    body = {"label": "feed", "callback": {"websocket": {"target": target, **channel}}}
    answer = await stage.http.post(f"{V4}/user/callbacks", json=body)
    assert answer.status_code == 202, answer.text
    cbid: str = answer.json()["callbackId"]
    return cbid


async def attempts(db: Database, callback_id: str) -> list[tuple[str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(delivery_attempts.c.outcome, delivery_attempts.c.error_class)
            .where(delivery_attempts.c.callback_id == callback_id)
            .order_by(delivery_attempts.c.id)
        )
        return [(row.outcome, row.error_class) for row in rows]


async def pending(db: Database, callback_id: str) -> int:
    async with db.read() as conn:
        rows = await conn.execute(
            select(notifications.c.id).where(
                notifications.c.callback_id == callback_id, notifications.c.state == "pending"
            )
        )
        return len(rows.all())


def statuses(hook: WsReceiver, remote_id: str) -> list[str]:
    return [
        m["remoteEvent"]["eventStatus"]["status"]
        for m in hook.messages
        if m["remoteEvent"]["remoteActionId"] == remote_id
    ]


async def test_messages_arrive_as_text_frames_on_one_connection_and_are_logged(
    db: Database, clock: FakeClock
) -> None:
    async with ws_stage(db, clock) as stage, ws_receiver() as hook:
        cbid = await ws_callback(
            stage, hook.url + "?user=u", attributes=[{"key": "car", "value": "$Vin"}]
        )
        got = await stage.http.get(f"{V4}/user/callbacks/{cbid}")
        rid = await stage.remote(cbid, {"label": "front", "door": {"state": "Locked"}})
        await stage.drain()
        await record(stage, rid, ("Pending", "SentToVehicle"))
        await stage.drain()
        await record(stage, rid, ("Done", "Success"), done=True)
        await stage.drain()
        logged = await attempts(db, cbid)
    assert got.json()["subscribe"]["callback"] == {
        "websocket": {
            "target": hook.url + "?user=u",
            "attributes": [{"type": "Body", "key": "car", "value": "$Vin"}],
        }
    }
    assert hook.connections == 1, "one connection carries every message of the callback"
    assert hook.paths == ["/feed?user=u"]
    assert all(not isinstance(frame, list) for _, frame in hook.frames)
    for message in hook.messages:
        assert_conforms("b2c-webhook", "Message", message)
        assert message["callbackId"] == cbid
        vin = stage.tenant.vehicles["Electric"].vin
        assert message["attributes"] == [{"key": "car", "value": vin}]
    assert statuses(hook, rid) == ["Accepted", "SentToVehicle", "Success"]
    assert logged == [("delivered", None)] * 3


async def test_a_receiver_that_drops_mid_batch_loses_nothing_and_keeps_each_remotes_order(
    db: Database, clock: FakeClock
) -> None:
    # The first connection stops reading after the three Accepted messages, the second before
    # its first frame (the backlog's batch), the third is healthy.
    async with ws_stage(db, clock) as stage, ws_receiver(c1=3, c2=0) as hook:
        cbid = await ws_callback(stage, hook.url)
        remotes = [await stage.remote(cbid, {"horn": {"state": "Activated"}}) for _ in range(3)]
        await stage.drain()
        await hook.read(3)  # the receiver has gone silent before anything else is sent
        for rid in remotes:
            await record(stage, rid, ("Pending", "SentToVehicle"))
            await record(stage, rid, ("Done", "Success"), done=True)
        for _ in range(12):
            await stage.drain()
            if not await pending(db, cbid):
                break
            clock.advance(10)
        left = await pending(db, cbid)
        logged = await attempts(db, cbid)
    assert left == 0
    for rid in remotes:
        seen = list(dict.fromkeys(statuses(hook, rid)))
        assert seen == ["Accepted", "SentToVehicle", "Success"], (rid, hook.frames)
    assert hook.connections >= 3
    assert any(isinstance(frame, list) for number, frame in hook.frames if number >= 3), (
        "what waited was sent as an array"
    )
    failed = [error for outcome, error in logged if outcome != "delivered"]
    assert failed, logged
    assert set(failed) <= {"timeout", "connect"}, logged


async def test_a_private_websocket_target_is_refused_and_nothing_is_stored(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        stage.ctx.target_policy = TargetPolicy()
        answer = await stage.http.post(
            f"{V4}/user/callbacks",
            json={"callback": {"websocket": {"target": "ws://10.1.2.3:8080/feed"}}},
        )
        async with db.read() as conn:
            count = len((await conn.execute(select(callbacks.c.id))).all())
    assert answer.status_code == 400
    assert answer.json()["code"] == ErrorCode.INVALID_WEBHOOK_TARGET.code
    assert "callback.websocket.target" in answer.json()["message"]
    assert count == 0


class _Resolver(AbstractResolver):
    """Answers every name with one address, as a DNS server under someone else's control."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": self.address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def test_a_name_that_resolves_to_a_private_address_is_never_dialled(
    db: Database, clock: FakeClock
) -> None:
    strict = TargetPolicy()
    channel = WebSocketChannel(
        strict, timeout=1.0, resolver=SafeResolver(strict, _Resolver("127.0.0.1"))
    )
    async with ws_stage(db, clock, channel) as stage, ws_receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        cbid = await ws_callback(stage, f"wss://feed.example.com:{port}/feed")
        await stage.remote(cbid)
        await stage.drain()
        await asyncio.sleep(0)
        logged = await attempts(db, cbid)
    assert hook.connections == 0
    assert logged == [("failed", "refused_address")]


async def test_a_door_locked_reports_done_over_the_websocket_through_the_running_roles(
    db: Database,
) -> None:
    """``serve``'s roles as they run: the simulated car, the dispatcher and the delivery worker
    (its WebSocket channel built from the settings), on the real clock."""
    async with prepared(db) as tenant, running(db) as app, ws_receiver() as hook:
        vehicle = tenant.vehicles["Electric"]
        user = await make_user(app.state.ctx, vehicle_ids=[vehicle.id])
        async with user_http(app, user) as http:
            created = await http.post(
                f"{V4}/user/callbacks",
                json={"type": ["Remote"], "callback": {"websocket": {"target": hook.url}}},
            )
            assert created.status_code == 202, created.text
            cbid = created.json()["callbackId"]
            posted = await http.post(
                f"{V4}/user/vehicles/{vehicle.id}/callbacks/{cbid}/remotes",
                json={"door": {"state": "Locked"}},
            )
            assert posted.status_code == 202, posted.text
            rid = posted.json()["remoteActionId"]
            async with asyncio.timeout(10):
                while "Done" not in [
                    m["remoteEvent"]["eventStatus"]["type"] for m in hook.messages
                ]:
                    await hook.read(len(hook.frames) + 1)
    seen = statuses(hook, rid)
    assert seen[0] == "Accepted"
    assert seen[-1] in ("Success", "AlreadyDone")
    assert hook.connections == 1


async def test_a_test_notification_goes_down_the_websocket(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage, ws_receiver() as hook:
        cbid = await ws_callback(stage, hook.url)
        answer = await stage.http.post(f"{V4}/user/callbacks/{cbid}/test")
    assert answer.status_code == 200, answer.text
    assert answer.json()["delivered"] is True
    ((_, frame),) = hook.frames
    assert frame["callbackId"] == cbid
    assert frame["remoteEvent"]["remoteActionId"] == "0" * 32


async def test_a_remote_changes_its_messages_through_callback_attributes_websocket(
    db: Database, clock: FakeClock
) -> None:
    async with ws_stage(db, clock) as stage, ws_receiver() as hook:
        cbid = await ws_callback(stage, hook.url, attributes=[{"key": "room", "value": "hall"}])
        body = {
            "door": {"state": "Locked"},
            "callbackAttributes": {
                "websocket": [{"key": "room", "value": "garage"}],
                "webhook": [{"type": "Body", "key": "unused", "value": "x"}],
            },
        }
        await stage.remote(cbid, body)
        await stage.drain()
    (message,) = hook.messages
    assert message["attributes"] == [{"key": "room", "value": "garage"}]


async def test_the_connection_to_a_websocket_callback_is_signed_with_its_secret(
    db: Database, clock: FakeClock
) -> None:
    """``keyfob listen --ws --secret`` lets the worker's signed connection in: the handshake
    carries the callback's signature over its id."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    printed: list[str] = []
    async with ws_stage(db, clock) as stage:
        body = {"label": "feed", "callback": {"websocket": {"target": f"ws://127.0.0.1:{port}/"}}}
        created = (await stage.http.post(f"{V4}/user/callbacks", json=body)).json()
        cbid, secret = created["callbackId"], created["secret"]
        receiver = await listen_ws.start("127.0.0.1", port, printed.append, secrets=[secret])
        async with receiver:
            await stage.remote(cbid, {"label": "front", "door": {"state": "Locked"}})
            await stage.drain()
            logged = await attempts(db, cbid)
    assert logged == [("delivered", None)]
    assert not [line for line in printed if "!!" in line]
    assert any(line.endswith("Doors  Pending/Accepted") for line in printed)
