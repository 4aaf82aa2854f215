"""Budgets you can see (docs/extensions.md): ``GET .../budget`` and the ``Keyfob-Wakeups-*``
headers of POST remote, counted from the same wake-ups the dispatcher counts, on both engines,
both faces and both POST routes (lean and documented)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from keyfob.vehicles.models import wake_ups
from oracle_schemas import assert_conforms
from user_face import V4, user_stage

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def stage(db: Database, clock: FakeClock, **settings: Any) -> AsyncIterator[Tenant]:
    app = create_app(
        make_settings(db.url, **settings), database=db, clock=clock, announce=lambda _: None
    )
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, "alice", clock())
        try:
            yield tenant
        finally:
            await tenant.http.aclose()


async def woke(db: Database, vehicle_id: str, *moments: datetime) -> None:
    """Wake-ups as the dispatcher records them when it sends one."""
    async with db.transaction() as conn:
        await conn.execute(
            wake_ups.insert(), [{"vehicle_id": vehicle_id, "at": m} for m in moments]
        )


async def test_a_fresh_vehicle_has_its_whole_budget(db: Database) -> None:
    clock = FakeClock(START)
    async with stage(db, clock) as tenant:
        vid = tenant.vehicles["Electric"].id
        answer = await tenant.http.get(f"{tenant.fleet}/vehicles/{vid}/budget")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["vin"] == tenant.vehicles["Electric"].vin
    assert body["wakeUps"]["remaining"] == 6  # the short window binds: 6 per 20 minutes
    assert body["wakeUps"]["month"] == {
        "quota": 100,
        "used": 0,
        "remaining": 100,
        "resetsAt": "2026-04-01T00:00:00.000Z",
    }
    assert body["wakeUps"]["shortWindow"]["freesAt"] is None
    assert body["requests"]["dayLimit"] == 100_000
    assert body["requests"]["dayRemaining"] == 100_000 - 1
    assert answer.headers["X-RateLimit-Remaining-1"] == str(body["requests"]["dayRemaining"])


async def test_spent_wake_ups_are_counted_as_the_dispatcher_counts_them(db: Database) -> None:
    clock = FakeClock(START)
    async with stage(db, clock) as tenant:
        vid = tenant.vehicles["Electric"].id
        last_month = START - timedelta(days=20)
        earlier = START - timedelta(days=2)
        in_window = [START - timedelta(minutes=15), START - timedelta(minutes=5)]
        await woke(db, vid, last_month, earlier, *in_window)
        await woke(db, tenant.vehicles["Thermic"].id, *in_window)  # another car's
        body = (await tenant.http.get(f"{tenant.fleet}/vehicles/{vid}/budget")).json()
    month, short = body["wakeUps"]["month"], body["wakeUps"]["shortWindow"]
    assert (month["used"], month["remaining"]) == (3, 97)
    assert (short["used"], short["remaining"], short["windowSeconds"]) == (2, 4, 1200)
    assert short["freesAt"] == "2026-03-10T12:05:00.000Z"  # the oldest in the window + 20 min
    assert body["wakeUps"]["remaining"] == 4
    assert body["wakeUps"]["resetsAt"] == "2026-03-10T12:05:00.000Z"


async def test_a_spent_month_resets_at_the_next_month(db: Database) -> None:
    clock = FakeClock(START)
    async with stage(db, clock, vehicle={"wake_up_quota_per_month": 2}) as tenant:
        vid = tenant.vehicles["Electric"].id
        await woke(db, vid, START - timedelta(days=3), START - timedelta(minutes=1))
        body = (await tenant.http.get(f"{tenant.fleet}/vehicles/{vid}/budget")).json()
    assert body["wakeUps"]["remaining"] == 0
    assert body["wakeUps"]["resetsAt"] == "2026-04-01T00:00:00.000Z"


async def test_someone_elses_vehicle_has_no_budget_to_show(db: Database) -> None:
    clock = FakeClock(START)
    async with stage(db, clock) as tenant:
        app = tenant.http._transport.app  # type: ignore[attr-defined]
        bob = await make_tenant(app, db, "bob", clock())
        try:
            vid = bob.vehicles["Electric"].id
            answer = await tenant.http.get(f"{tenant.fleet}/vehicles/{vid}/budget")
        finally:
            await bob.http.aclose()
    assert answer.status_code == 404
    assert answer.json()["code"] == 40402


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "documented"])
async def test_post_remote_answers_with_the_budget_headers_when_asked(
    db: Database, lean: bool
) -> None:
    clock = FakeClock(START)
    async with stage(db, clock, lean_accept=lean) as tenant:
        vid = tenant.vehicles["Electric"].id
        await woke(db, vid, START - timedelta(minutes=10))
        cbid = await create_callback(tenant)
        path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        key = {"Idempotency-Key": "k-1", "Keyfob-Budget": "true"}
        first = await tenant.http.post(path, json={"horn": {"state": "Activated"}}, headers=key)
        again = await tenant.http.post(path, json={"horn": {"state": "Activated"}}, headers=key)
        asked = {"Keyfob-Budget": "true"}
        refused = await tenant.http.post(path, json={"horn": {}}, headers=asked)
        unasked = await tenant.http.post(path, json={"lights": {"on": True}})
    assert first.status_code == 202, first.text
    assert first.headers["Keyfob-Wakeups-Remaining"] == "5"
    assert first.headers["Keyfob-Wakeups-Reset"] == "2026-03-10T12:10:00.000Z"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Keyfob-Wakeups-Remaining"] == "5"
    assert_conforms("b2b-api", "RemotePostResponse", first.json())  # the body is untouched
    assert refused.status_code == 400
    assert "Keyfob-Wakeups-Remaining" not in refused.headers
    assert unasked.status_code == 202
    assert "Keyfob-Wakeups-Remaining" not in unasked.headers  # official clients see no change
    assert "Keyfob-Wakeups-Reset" not in unasked.headers


async def test_the_user_face_shows_budgets_of_the_users_vehicles(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage_:
        vid = stage_.vehicle("Electric")
        await woke(db, vid, clock() - timedelta(minutes=1))
        answer = await stage_.http.get(f"{V4}/user/vehicles/{vid}/budget")
        created = await stage_.callback()
        posted = await stage_.http.post(
            stage_.remotes_path(created["callbackId"], vid),
            json={"door": {"state": "Locked"}},
            headers={"Keyfob-Budget": "true"},
        )
        hybrid = stage_.vehicle("Hybrid")  # in the fleet, not the user's
        refused = await stage_.http.get(f"{V4}/user/vehicles/{hybrid}/budget")
    assert answer.status_code == 200, answer.text
    assert answer.json()["wakeUps"]["shortWindow"]["used"] == 1
    assert answer.json()["wakeUps"]["remaining"] == 5
    assert posted.status_code == 202
    assert posted.headers["Keyfob-Wakeups-Remaining"] == "5"
    assert refused.status_code == 404
