"""Cancelling a remote (docs/extensions.md): before it is sent it ends Done/Failed
CanceledByDriver and the webhook hears so; once sent, or finished, 409 with the reason. Both
faces, both engines, the real server and a real receiver."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from keyfob.kit.clock import FakeClock
from keyfob.remotes import progress
from keyfob.remotes.lifecycle import Phase, Step
from keyfob.remotes.models import remotes
from keyfob.remotes.rows import REMOTE_COLUMNS, REMOTES_AND_VEHICLES, read_remotes
from keyfob.store.engine import Database
from keyfob.store.units import run_unit
from keyfob.vocabulary import EventType
from user_face import V4, Stage, user_stage

HORN = {"horn": {"state": "Activated"}}


async def dispatched(stage: Stage, remote_id: str, phase: Phase, *statuses: str) -> None:
    """Move the remote on the way the dispatcher does (``progress.apply``)."""
    async with stage.db.read() as conn:
        rows = await conn.execute(
            select(*REMOTE_COLUMNS)
            .select_from(REMOTES_AND_VEHICLES)
            .where(remotes.c.id == remote_id)
        )
        (remote,) = read_remotes(rows)
    specs = [(EventType.PENDING, status, None, None) for status in statuses]
    planned = [progress.Planned(remote, Step(events=specs, phase=phase), "c" * 32)]
    now = stage.clock()
    await run_unit(stage.db, lambda: progress.apply(planned, now=now))


async def fleet_remote(stage: Stage) -> tuple[str, str]:
    tenant = stage.tenant
    created = await tenant.http.post(
        f"{tenant.fleet}/remote/callbacks",
        json={
            "remoteTypes": ["Horn"],
            "callback": {"webhook": {"name": "hook", "target": stage.hook.url}},
        },
    )
    cbid = created.json()["callbackId"]
    path = f"{tenant.fleet}/vehicles/{stage.vehicle()}/callbacks/{cbid}/remotes"
    posted = await tenant.http.post(path, json=HORN)
    assert posted.status_code == 202, posted.text
    return path, posted.json()["remoteActionId"]


def fleet_statuses(stage: Stage, remote_id: str) -> list[dict[str, Any]]:
    return [
        e["eventStatus"]
        for body in stage.hook.bodies
        for e in body["events"]
        if e["remoteActionId"] == remote_id
    ]


async def test_a_queued_remote_is_cancelled_and_the_webhook_hears_why(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        path, rid = await fleet_remote(stage)
        answer = await stage.tenant.http.post(f"{path}/{rid}/cancel")
        again = await stage.tenant.http.post(f"{path}/{rid}/cancel")
        read = (await stage.tenant.http.get(f"{path}/{rid}")).json()
        await stage.drain()
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Failed"
    assert answer.json()["failureCause"] == "CanceledByDriver"
    assert [e["status"] for e in read["events"]] == ["Accepted", "Failed"]
    assert read["events"][-1]["failureCause"] == "CanceledByDriver"
    assert fleet_statuses(stage, rid) == [
        {"type": "Pending", "status": "Accepted"},
        {"type": "Done", "status": "Failed", "failureCause": "CanceledByDriver"},
    ]
    assert again.status_code == 409
    assert again.json()["code"] == 40904
    assert "already finished" in again.json()["message"]


async def test_a_waking_remote_can_still_be_cancelled(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        path, rid = await fleet_remote(stage)
        await dispatched(stage, rid, Phase.WAKING, "WakingUpVehicle")
        answer = await stage.tenant.http.post(f"{path}/{rid}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["failureCause"] == "CanceledByDriver"


async def test_a_sent_remote_cannot_be_cancelled(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        path, rid = await fleet_remote(stage)
        await dispatched(stage, rid, Phase.SENT, "CheckingVehicle", "SentToVehicle")
        answer = await stage.tenant.http.post(f"{path}/{rid}/cancel")
        read = (await stage.tenant.http.get(f"{path}/{rid}")).json()
        unknown = await stage.tenant.http.post(f"{path}/{'d' * 32}/cancel")
    assert answer.status_code == 409
    assert answer.json()["code"] == 40904
    assert "already sent to the vehicle" in answer.json()["message"]
    assert read["status"] == "SentToVehicle"
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 40404


async def test_the_user_face_cancels_its_own_remotes_only(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        created = await stage.callback()
        cbid = created["callbackId"]
        rid = await stage.remote(cbid, HORN)
        cancel = f"{stage.remotes_path(cbid)}/{rid}/cancel"
        _, stranger = await stage.another_user(vehicles=[stage.vehicle()])
        try:
            refused = await stranger.post(cancel)
        finally:
            await stranger.aclose()
        answer = await stage.http.post(cancel)
        await stage.drain()
    assert refused.status_code == 404
    assert answer.status_code == 200, answer.text
    assert answer.json()["failureCause"] == "CanceledByDriver"
    last = stage.hook.requests[-1]["json"]
    assert last["remoteEvent"]["eventStatus"] == {
        "type": "Done",
        "status": "Failed",
        "failureCause": "CanceledByDriver",
    }
    assert cancel.startswith(V4)
