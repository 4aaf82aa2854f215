"""Dry runs of POST remote (docs/extensions.md): every check, what would happen, nothing stored,
on both engines and both faces, whether the lean route is on or off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock
from keyfob.remotes.models import remotes
from keyfob.runtime.tables import notifications
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicle_states, wake_ups
from user_face import V4, user_stage

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HORN = {"horn": {"state": "Activated"}}
HEAT = {"preconditioning": {"airConditioning": {"immediate": True}}}


@asynccontextmanager
async def stage(db: Database, **settings: Any) -> AsyncIterator[tuple[Tenant, str]]:
    clock = FakeClock(START)
    app = create_app(
        make_settings(db.url, **settings), database=db, clock=clock, announce=lambda _: None
    )
    async with app.router.lifespan_context(app):
        tenant = await make_tenant(app, db, "alice", clock())
        cbid = await create_callback(tenant)
        try:
            yield tenant, cbid
        finally:
            await tenant.http.aclose()


def remotes_path(tenant: Tenant, cbid: str, motorization: str = "Electric") -> str:
    return f"{tenant.fleet}/vehicles/{tenant.vehicles[motorization].id}/callbacks/{cbid}/remotes"


async def seen(db: Database, vehicle_id: str, presence: str, status: dict[str, Any] | None) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            vehicle_states.update()
            .where(vehicle_states.c.vehicle_id == vehicle_id)
            .values(presence=presence, presence_at=START, status=status)
        )


async def stored(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        made = (await conn.execute(select(func.count()).select_from(remotes))).scalar_one()
        notes = (await conn.execute(select(func.count()).select_from(notifications))).scalar_one()
    return made, notes


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "documented"])
async def test_a_sleeping_car_would_be_woken_and_nothing_is_stored(
    db: Database, lean: bool
) -> None:
    async with stage(db, lean_accept=lean) as (tenant, cbid):
        answer = await tenant.http.post(
            remotes_path(tenant, cbid), params={"dryRun": "true"}, json=HORN
        )
        assert await stored(db) == (0, 0)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dryRun"] is True
    assert body["type"] == "Horn"
    assert body["outcome"] == "WakeUpFirst"
    assert body["wouldWakeUpVehicle"] is True
    assert body["events"] == [{"type": "Pending", "status": "WakingUpVehicle"}]
    assert body["wakeUps"]["remaining"] == 6
    assert body["wakeUps"]["remainingAfter"] == 5
    assert body["wakeUps"]["wouldSpend"] == ["month", "shortWindow"]
    assert body["wakeUps"]["month"] == {"remaining": 100, "remainingAfter": 99}
    assert body["wakeUps"]["shortWindow"] == {"remaining": 6, "remainingAfter": 5}
    assert "Keyfob-Wakeups-Remaining" not in answer.headers


async def test_an_online_car_would_get_the_command_at_once(db: Database) -> None:
    async with stage(db) as (tenant, cbid):
        await seen(db, tenant.vehicles["Electric"].id, "online", None)
        body = (
            await tenant.http.post(remotes_path(tenant, cbid), params={"dryRun": "1"}, json=HORN)
        ).json()
    assert body["outcome"] == "SendNow"
    assert body["wouldWakeUpVehicle"] is False
    assert body["wakeUps"]["wouldSpend"] == []
    assert body["wakeUps"]["remainingAfter"] == body["wakeUps"]["remaining"]
    assert body["vehicle"]["presence"] == "online"
    assert [e["status"] for e in body["events"]] == ["CheckingVehicle", "SentToVehicle"]


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        ({"privacy": {"state": "Full"}}, HORN, "NotPossibleDueToVehiclePrivacyLevel"),
        ({"stolen": {"state": True}}, HEAT, "NotPossibleDueToVehicleStolenState"),
        (
            {"energies": [{"type": "Electric", "level": 5}]},
            HEAT,
            "NotPossibleDueToVehicleBatteryLevel",
        ),
    ],
    ids=["privacy", "stolen", "battery"],
)
async def test_what_the_last_status_rules_out_is_foretold(
    db: Database, status: dict[str, Any], body: dict[str, Any], cause: str
) -> None:
    async with stage(db) as (tenant, cbid):
        await seen(db, tenant.vehicles["Electric"].id, "online", status)
        answer = await tenant.http.post(
            remotes_path(tenant, cbid), params={"dryRun": "true"}, json=body
        )
        assert await stored(db) == (0, 0)
    assert answer.json()["outcome"] == "Fail"
    assert answer.json()["failureCause"] == cause
    assert answer.json()["events"][-1] == {
        "type": "Done",
        "status": "Failed",
        "failureCause": cause,
    }


async def test_a_spent_budget_and_a_remote_in_progress_are_foretold(db: Database) -> None:
    async with stage(db, vehicle={"wake_up_quota_per_month": 1}) as (tenant, cbid):
        vid = tenant.vehicles["Electric"].id
        async with db.transaction() as conn:
            await conn.execute(
                wake_ups.insert().values(vehicle_id=vid, at=START - timedelta(days=1))
            )
        spent = (
            await tenant.http.post(remotes_path(tenant, cbid), params={"dryRun": "true"}, json=HORN)
        ).json()
        posted = await tenant.http.post(remotes_path(tenant, cbid), json=HORN)
        assert posted.status_code == 202
        busy = (
            await tenant.http.post(remotes_path(tenant, cbid), params={"dryRun": "true"}, json=HORN)
        ).json()
        assert await stored(db) == (1, 1)  # the real POST only
    assert spent["failureCause"] == "TooManyWakeUpsOverMonth"
    assert spent["events"][0] == {"type": "Pending", "status": "TooManyWakeUpsOverMonth"}
    assert spent["wakeUps"]["remaining"] == 0
    assert busy["failureCause"] == "SameActionInProgress"


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "documented"])
async def test_refusals_are_the_real_posts(db: Database, lean: bool) -> None:
    async with stage(db, lean_accept=lean) as (tenant, cbid):
        dry = {"dryRun": "true"}
        bad_body = await tenant.http.post(remotes_path(tenant, cbid), params=dry, json={"horn": {}})
        thermic = await tenant.http.post(
            remotes_path(tenant, cbid, "Thermic"),
            params=dry,
            json={"charging": {"immediate": True}},
        )
        unknown = await tenant.http.post(remotes_path(tenant, "c" * 32), params=dry, json=HORN)
        bad_flag = await tenant.http.post(
            remotes_path(tenant, cbid), params={"dryRun": "maybe"}, json=HORN
        )
        assert await stored(db) == (0, 0)
    assert (bad_body.status_code, bad_body.json()["code"]) == (400, 40002)
    assert (thermic.status_code, thermic.json()["code"]) == (400, 40005)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 40403)
    assert bad_flag.status_code == 400


async def test_the_user_face_runs_dry_too(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as user:
        created = await user.callback()
        path = user.remotes_path(created["callbackId"])
        answer = await user.http.post(path, params={"dryRun": "true"}, json=HORN)
        not_mine = await user.http.post(
            user.remotes_path(created["callbackId"], user.vehicle("Hybrid")),
            params={"dryRun": "true"},
            json=HORN,
        )
        assert await stored(db) == (0, 0)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "WakeUpFirst"
    assert not_mine.status_code == 404
    assert path.startswith(V4)
