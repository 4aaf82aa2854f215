"""``Keyfob-Not-Before`` and ``Keyfob-Expires-At`` (docs/extensions.md) through the real server
and the real dispatcher (memory link, a recording wake-up channel, an injected clock), on both
engines: a remote waits without spending a wake-up, and is never started or sent after expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock, isoformat
from keyfob.link.memory import MemoryBroker
from keyfob.remotes.dispatcher import Dispatcher
from keyfob.remotes.models import remotes
from keyfob.runtime.vehicle_role import limits
from keyfob.store.engine import Database
from user_face import user_stage

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HORN = {"horn": {"state": "Activated"}}


@dataclass
class Wakes:
    """The wake-up channel, recording whom it was asked to wake."""

    sent: list[str] = field(default_factory=list)

    async def wake(self, vin: str) -> None:
        self.sent.append(vin)


@dataclass
class Stage:
    tenant: Tenant
    path: str
    clock: FakeClock
    dispatcher: Dispatcher
    wakes: Wakes

    async def post(self, **headers: str) -> str:
        answer = await self.tenant.http.post(self.path, json=HORN, headers=headers)
        assert answer.status_code == 202, answer.text
        remote_id: str = answer.json()["remoteActionId"]
        return remote_id

    async def events(self, remote_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (
            await self.tenant.http.get(f"{self.path}/{remote_id}")
        ).json()["events"]
        return found

    def at(self, seconds: float) -> str:
        return isoformat(START + timedelta(seconds=seconds))


@asynccontextmanager
async def stage(db: Database, *, lean: bool = True) -> AsyncIterator[Stage]:
    clock = FakeClock(START)
    settings = make_settings(db.url, lean_accept=lean)
    app = create_app(settings, database=db, clock=clock, announce=lambda _: None)
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, "alice", clock())
        cbid = await create_callback(tenant)
        vid = tenant.vehicles["Electric"].id
        path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        wakes = Wakes()
        link = MemoryBroker().connect("keyfob-dispatcher")
        dispatcher = Dispatcher(db, link, wakes, clock=clock, limits=limits(settings))
        try:
            yield Stage(tenant, path, clock, dispatcher, wakes)
        finally:
            await tenant.http.aclose()


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "documented"])
async def test_a_remote_waits_for_its_not_before_time_without_a_wake_up(
    db: Database, lean: bool
) -> None:
    async with stage(db, lean=lean) as s:
        rid = await s.post(**{"Keyfob-Not-Before": s.at(600)})
        assert await s.dispatcher.advance_due() == 0
        s.clock.advance(599)
        assert await s.dispatcher.advance_due() == 0
        assert s.wakes.sent == []
        assert [e["status"] for e in await s.events(rid)] == ["Accepted"]
        s.clock.advance(1)
        assert await s.dispatcher.advance_due() == 1
        assert s.wakes.sent == [s.tenant.vehicles["Electric"].vin]
        assert [e["status"] for e in await s.events(rid)] == ["Accepted", "WakingUpVehicle"]


async def test_a_wake_up_waits_no_longer_than_the_expiry(db: Database) -> None:
    async with stage(db) as s:
        rid = await s.post(**{"Keyfob-Expires-At": s.at(30)})
        assert await s.dispatcher.advance_due() == 1  # asleep: woken
        s.clock.advance(29)
        assert await s.dispatcher.advance_due() == 0  # not due before the expiry
        s.clock.advance(1)  # 30 s, half the wake-up time-out
        assert await s.dispatcher.advance_due() == 1
        events = await s.events(rid)
    assert [e["status"] for e in events] == ["Accepted", "WakingUpVehicle", "Failed"]
    assert events[-1]["failureCause"] == "VehicleConnectionTimeout"
    assert events[-1]["eventDate"] == s.at(30)


async def test_a_remote_past_its_expiry_is_never_started(db: Database) -> None:
    async with stage(db) as s:
        rid = await s.post(**{"Keyfob-Not-Before": s.at(60), "Keyfob-Expires-At": s.at(120)})
        s.clock.advance(300)  # the dispatcher was away all that time
        assert await s.dispatcher.advance_due() == 1
        events = await s.events(rid)
    assert s.wakes.sent == []
    assert [e["status"] for e in events] == ["Accepted", "Failed"]
    assert events[-1]["failureCause"] == "VehicleConnectionTimeout"


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "documented"])
@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"Keyfob-Expires-At": "tomorrow"}, "Keyfob-Expires-At must be an RFC 3339"),
        ({"Keyfob-Expires-At": "2026-03-10T13:00:00"}, "with its offset"),
        ({"Keyfob-Expires-At": "2026-03-10T11:00:00Z"}, "must be in the future"),
        (
            {"Keyfob-Not-Before": "2026-03-10T14:00:00Z", "Keyfob-Expires-At": "2026-03-10T13:00Z"},
            "must be after Keyfob-Not-Before",
        ),
        ({"Keyfob-Not-Before": "2026-05-10T14:00:00Z"}, "at most 31 days ahead"),
    ],
    ids=["not a date", "no offset", "past", "before start", "too far"],
)
async def test_unusable_headers_are_refused_and_nothing_is_stored(
    db: Database, lean: bool, headers: dict[str, str], says: str
) -> None:
    async with stage(db, lean=lean) as s:
        answer = await s.tenant.http.post(s.path, json=HORN, headers=headers)
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(remotes))).scalar_one()
    assert answer.status_code == 400
    assert answer.json()["code"] == 40000
    assert says in answer.json()["message"]
    assert stored == 0


async def test_the_user_face_takes_the_same_headers(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as user:
        created = await user.callback()
        later = isoformat(clock() + timedelta(hours=1))
        answer = await user.http.post(
            user.remotes_path(created["callbackId"]),
            json=HORN,
            headers={"Keyfob-Not-Before": later, "Keyfob-Expires-At": later + "x"},
        )
        assert answer.status_code == 400
        rid = await user.remote(created["callbackId"], HORN)
        async with db.read() as conn:
            due = (
                await conn.execute(select(remotes.c.due_at).where(remotes.c.id == rid))
            ).scalar_one()
        posted = await user.http.post(
            user.remotes_path(created["callbackId"]),
            json={"door": {"state": "Locked"}},
            headers={"Keyfob-Not-Before": later},
        )
        async with db.read() as conn:
            waiting = (
                await conn.execute(
                    select(remotes.c.due_at, remotes.c.not_before).where(
                        remotes.c.id == posted.json()["remoteActionId"]
                    )
                )
            ).one()
    assert due == clock()
    assert posted.status_code == 202
    assert waiting.due_at == waiting.not_before == clock() + timedelta(hours=1)
