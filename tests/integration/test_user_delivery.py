"""``Message`` notifications of the user face at a real local receiver (§5.3, decisions 13,
26 and 30).

Messages carry exactly the template's fields, keyfob's extensions travel in headers, one
message is an object and only a backlog is sent as arrays of at most 100. The policy is the
platform's: every 10 s until delivered or the 72 h horizon; a paused callback holds.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

from sqlalchemy import select

from keyfob.kit.clock import FakeClock
from keyfob.notifications.signing import verify
from keyfob.remotes import progress
from keyfob.remotes.lifecycle import Phase, Step
from keyfob.remotes.models import remotes
from keyfob.remotes.rows import REMOTE_COLUMNS, REMOTES_AND_VEHICLES, read_remotes
from keyfob.runtime.tables import delivery_attempts, notifications
from keyfob.store.engine import Database
from keyfob.store.units import run_unit
from keyfob.vocabulary import EventType
from oracle_schemas import assert_conforms
from user_face import V4, Stage, user_stage
from user_support import relogin

MESSAGE_KEYS = {"callbackId", "attributes", "type", "date", "remoteEvent"}


async def record(
    stage: Stage, remote_id: str, *events: tuple[str, str], done: bool = False
) -> None:
    """Record events the way the dispatcher does (``progress.apply``), at the clock's time."""
    async with stage.db.read() as conn:
        rows = await conn.execute(
            select(*REMOTE_COLUMNS)
            .select_from(REMOTES_AND_VEHICLES)
            .where(remotes.c.id == remote_id)
        )
        (remote,) = read_remotes(rows)
    specs = [(EventType(kind), status, None, None) for kind, status in events]
    step = Step(events=specs, phase=Phase.DONE if done else Phase.SENT)
    planned = [progress.Planned(remote, step, None)]
    now = stage.clock()
    await run_unit(stage.db, lambda: progress.apply(planned, now=now))


def messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    body = request["json"]
    found = body if isinstance(body, list) else [body]
    for item in found:
        assert_conforms("b2c-webhook", "Message", item)
        assert set(item) == MESSAGE_KEYS, item
        assert set(item["remoteEvent"]) == {"remoteActionId", "remoteType", "eventStatus"}
    return found


def statuses(stage: Stage) -> list[tuple[str, str]]:
    return [
        (m["remoteEvent"]["remoteActionId"], m["remoteEvent"]["eventStatus"]["status"])
        for request in stage.hook.requests
        for m in messages(request)
    ]


async def states(db: Database, callback_id: str) -> Counter[str]:
    async with db.read() as conn:
        found = await conn.execute(
            select(notifications.c.state).where(notifications.c.callback_id == callback_id)
        )
        return Counter(found.scalars())


async def test_one_message_arrives_as_the_template_has_it_signed_and_sequenced(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        created = await stage.callback(
            attributes=[
                {"type": "Header", "key": "X-Car", "value": "$Vin"},
                {"type": "Header", "key": "Authorization", "value": "Bearer receiver-token"},
                {"type": "Query", "key": "kind", "value": "$remotetype"},
                {"type": "Body", "key": "status", "value": "$RemoteStatus of $RemoteLabel"},
                {"type": "Body", "key": "callback", "value": "${CallbackLabel}/$CallbackID"},
            ]
        )
        cbid = created["callbackId"]
        body = {
            "label": "front door",
            "door": {"state": "Locked"},
            "attributes": [{"type": "Body", "key": "button", "value": "lock"}],
            "callbackAttributes": {
                "webhook": [{"type": "Header", "key": "authorization", "value": "Bearer mine"}]
            },
        }
        rid = await stage.remote(cbid, body)
        assert await stage.drain() == 1
    (request,) = stage.hook.requests
    (message,) = messages(request)
    assert isinstance(request["json"], dict), "one message is sent as an object"
    vin = stage.tenant.vehicles["Electric"].vin
    assert message == {
        "callbackId": cbid,
        "attributes": [
            {"key": "status", "value": "Accepted of front door"},
            {"key": "callback", "value": f"my app/{cbid}"},
            {"key": "button", "value": "lock"},
        ],
        "type": "Remote",
        "date": message["date"],
        "remoteEvent": {
            "remoteActionId": rid,
            "remoteType": "Doors",
            "eventStatus": {"type": "Pending", "status": "Accepted"},
        },
    }
    headers = request["headers"]
    assert headers["X-Car"] == vin
    assert headers["Authorization"] == "Bearer mine", "the remote's callbackAttributes replace"
    assert request["query"] == {"kind": "Doors"}
    assert headers["keyfob-sequence"] == "1"
    assert headers["webhook-id"].startswith("msg_")
    verify(created["secret"], headers, request["raw"], now=clock())


async def test_a_remotes_messages_go_one_by_one_in_order_while_the_receiver_keeps_up(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        first = await stage.remote(cbid)
        second = await stage.remote(cbid, {"horn": {"state": "Activated"}})
        await record(stage, first, ("Pending", "CheckingVehicle"), ("Pending", "SentToVehicle"))
        await record(stage, first, ("Done", "Success"), done=True)
        await record(stage, second, ("Done", "Success"), done=True)
        clock.advance(1)
        await stage.drain()
    assert all(isinstance(r["json"], dict) for r in stage.hook.requests), "no arrays"
    seen = statuses(stage)
    assert [s for r, s in seen if r == first] == [
        "Accepted",
        "CheckingVehicle",
        "SentToVehicle",
        "Success",
    ]
    assert [s for r, s in seen if r == second] == ["Accepted", "Success"]
    sequences = [
        (r["json"]["remoteEvent"]["remoteActionId"], r["headers"]["keyfob-sequence"])
        for r in stage.hook.requests
    ]
    assert [seq for rid, seq in sequences if rid == first] == ["1", "2", "3", "4"]


async def test_a_backlog_arrives_as_arrays_of_at_most_100(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        created = await stage.callback(
            attributes=[
                {"type": "Header", "key": "X-Car", "value": "$Vin"},
                {"type": "Query", "key": "q", "value": "1"},
                {"type": "Body", "key": "status", "value": "$RemoteStatus"},
            ]
        )
        cbid = created["callbackId"]
        # 130 messages wait while no worker runs; 30 s later the worker comes back.
        posted = [await stage.remote(cbid) for _ in range(65)]
        for rid in posted:
            await record(stage, rid, ("Pending", "CheckingVehicle"))
        await stage.after(30)
    requests = stage.hook.requests
    assert [len(r["json"]) for r in requests] == [100, 30]
    for request in requests:
        assert isinstance(request["json"], list)
        items = messages(request)
        assert "X-Car" not in request["headers"], "a batch values Body attributes only"
        assert request["query"] == {}
        assert all(
            i["attributes"]
            == [{"key": "status", "value": i["remoteEvent"]["eventStatus"]["status"]}]
            for i in items
        )
        order = request["headers"]["keyfob-sequence"].split(",")
        assert len(order) == len(items)
        verify(created["secret"], request["headers"], request["raw"], now=clock())
    seen = statuses(stage)
    assert len(seen) == 130
    for rid in posted:
        assert [s for r, s in seen if r == rid] == ["Accepted", "CheckingVehicle"]


async def test_the_fixed_policy_retries_every_10_s_until_delivered(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        stage.hook.answer = lambda n: 500 if n <= 6 else 200
        cbid = (await stage.callback())["callbackId"]
        await stage.remote(cbid)
        await stage.drain()
        for _ in range(6):
            await stage.after(10)
        async with db.read() as conn:
            found = await conn.execute(
                select(delivery_attempts.c.started_at, delivery_attempts.c.outcome)
                .where(delivery_attempts.c.callback_id == cbid)
                .order_by(delivery_attempts.c.id)
            )
            attempts = list(found)
        assert [a.outcome for a in attempts] == ["failed"] * 6 + ["delivered"]
        gaps = {(b.started_at - a.started_at).total_seconds() for a, b in pairwise(attempts)}
        assert gaps == {10.0}
        assert await states(db, cbid) == Counter({"delivered": 1})
        assert isinstance(stage.hook.requests[-1]["json"], dict)


async def test_72_hours_undelivered_fails_the_callback_and_resume_starts_again(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        stage.hook.answer = lambda _n: 503
        cbid = (await stage.callback())["callbackId"]
        await stage.remote(cbid)
        await stage.drain()
        clock.advance(72 * 3600 + 1)
        await stage.work.expire()
        assert await states(db, cbid) == Counter({"expired": 1})
        again = await relogin(stage.ctx, stage.user, scopes=stage.user.client.scopes)
        http = stage.http
        http.headers.update(again.headers)
        found = await http.get(f"{V4}/user/callbacks/{cbid}")
        assert found.json()["status"] == "Failed"
        assert (
            await http.post(stage.remotes_path(cbid), json={"horn": {"state": "Activated"}})
        ).status_code == 409
        await stage.set_status(cbid, "Running")
        stage.hook.answer = lambda _n: 200
        await stage.remote(cbid, {"horn": {"state": "Activated"}})
        await stage.drain()
        assert statuses(stage)[-1][1] == "Accepted"


async def test_a_paused_callback_holds_and_delivers_once_resumed(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        cbid = (await stage.callback())["callbackId"]
        rid = await stage.remote(cbid)
        await stage.set_status(cbid, "Paused")
        assert await stage.drain() == 0
        assert await states(db, cbid) == Counter({"pending": 1})
        await stage.set_status(cbid, "Running")
        assert await stage.drain() == 1
    assert statuses(stage) == [(rid, "Accepted")]
    assert isinstance(stage.hook.requests[0]["json"], dict)


async def test_deleting_with_a_remote_in_flight_drops_its_messages_and_keeps_it_readable(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        stage.hook.answer = lambda _n: 500
        cbid = (await stage.callback())["callbackId"]
        rid = await stage.remote(cbid)
        await stage.drain()  # the Accepted message fails once and waits for its retry
        deleted = await stage.http.delete(f"{V4}/user/callbacks/{cbid}")
        assert deleted.status_code == 204, deleted.text
        await record(stage, rid, ("Pending", "SentToVehicle"))
        await record(stage, rid, ("Done", "Success"), done=True)
        stage.hook.answer = lambda _n: 200
        assert await stage.after(10) == 0
        assert await states(db, cbid) == Counter({"dropped": 3})
        read = await stage.http.get(f"{stage.remotes_path(cbid)}/{rid}")
        assert read.status_code == 200, read.text
        assert read.json()["status"] == "Success"
        listed = await stage.http.get(stage.remotes_path(cbid))
        assert [r["remoteActionId"] for r in listed.json()["_embedded"]["remoteActions"]] == [rid]
        refused = await stage.http.post(
            stage.remotes_path(cbid), json={"horn": {"state": "Activated"}}
        )
        assert refused.status_code == 404
    assert len(stage.hook.requests) == 1
