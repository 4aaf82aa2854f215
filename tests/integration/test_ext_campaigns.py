"""Fleet campaigns (docs/extensions.md) through the real server and the real runner, on both
engines: ordinary remotes at the campaign's pace, its schedule, abort threshold and cancel."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import Tenant, create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock, isoformat, utcnow
from keyfob.remotes import progress as remote_progress
from keyfob.remotes.control.campaign_models import campaigns
from keyfob.remotes.control.campaign_runner import CampaignRunner
from keyfob.remotes.control.campaigns import allowed_by
from keyfob.remotes.lifecycle import Phase, Step
from keyfob.remotes.models import remotes
from keyfob.remotes.rows import REMOTE_COLUMNS, REMOTES_AND_VEHICLES, read_remotes
from keyfob.runtime.campaign_role import campaign_role
from keyfob.store.engine import Database
from keyfob.store.units import run_unit
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_vehicle
from keyfob.vocabulary import EventType, Motorization

HORN = {"horn": {"state": "Activated"}}


async def more_vehicles(db: Database, tenant: Tenant, clock: FakeClock, n: int) -> list[str]:
    ids = []
    async with db.transaction() as conn:
        for index in range(n):
            vehicle = await create_vehicle(
                conn,
                fleet_id=tenant.fleet_id,
                vin=f"VF3CAMP{index:010d}",
                motorization="Electric",
                capabilities=capabilities_for(Motorization.ELECTRIC),
                now=clock(),
            )
            ids.append(vehicle.id)
    return ids


async def launch(tenant: Tenant, **body: Any) -> dict[str, Any]:
    answer = await tenant.http.post(f"{tenant.fleet}/remote/campaigns", json=body)
    assert answer.status_code == 202, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def seen(tenant: Tenant, campaign: dict[str, Any]) -> dict[str, Any]:
    answer = await tenant.http.get(f"{tenant.fleet}/remote/campaigns/{campaign['campaignId']}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def runner(app: Any, clock: FakeClock) -> CampaignRunner:
    ctx = app.state.ctx
    return CampaignRunner(ctx.database, ctx.acceptor, clock=clock)


async def fail_all(db: Database, clock: FakeClock, cause: str) -> None:
    """End every remote Done/Failed, as the dispatcher records it."""
    async with db.read() as conn:
        due = read_remotes(
            await conn.execute(select(*REMOTE_COLUMNS).select_from(REMOTES_AND_VEHICLES))
        )
    step = Step(events=[(EventType.DONE, "Failed", cause, None)], phase=Phase.DONE)
    planned = [remote_progress.Planned(remote, step, None) for remote in due]
    now = clock()
    await run_unit(db, lambda: remote_progress.apply(planned, now=now))


def test_the_rate_and_its_ramp() -> None:
    assert [allowed_by(t, per_minute=60, ramp_s=0) for t in (-1, 0, 0.5, 1, 59)] == [
        0,
        1,
        1,
        2,
        60,
    ]
    # 60/min reached over 60 s: half the count at the end of the ramp, full rate after.
    assert allowed_by(30, per_minute=60, ramp_s=60) == 1 + 7
    assert allowed_by(60, per_minute=60, ramp_s=60) == 1 + 30
    assert allowed_by(90, per_minute=60, ramp_s=60) == 1 + 60


async def test_remotes_start_at_the_rate_as_ordinary_remotes(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant
) -> None:
    vehicle_ids = await more_vehicles(db, tenant, clock, 5)
    cbid = await create_callback(tenant)
    campaign = await launch(
        tenant, callbackId=cbid, remote=HORN, vehicles=vehicle_ids, rate={"perMinute": 60}
    )
    assert campaign["status"] == "Scheduled"
    assert campaign["targets"] == {
        "total": 5,
        "pending": 5,
        "started": 0,
        "refused": 0,
        "cancelled": 0,
    }
    run = runner(app, clock)
    assert await run.run_once() == 1
    assert await run.run_once() == 0  # the same second: nothing more
    clock.advance(2)
    assert await run.run_once() == 2
    progress = await seen(tenant, campaign)
    assert progress["status"] == "Running"
    assert progress["targets"]["started"] == 3
    assert progress["remotes"]["byStatus"] == {"Accepted": 3}
    clock.advance(10)
    assert await run.run_once() == 2
    progress = await seen(tenant, campaign)
    assert progress["status"] == "Completed"
    assert progress["targets"]["started"] == 5
    for vehicle_id in vehicle_ids:  # each an ordinary remote, readable where any remote is
        listed = await tenant.http.get(
            f"{tenant.fleet}/vehicles/{vehicle_id}/callbacks/{cbid}/remotes"
        )
        assert listed.json()["total"] == 1


async def test_a_scheduled_campaign_waits_for_its_start(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant
) -> None:
    cbid = await create_callback(tenant)
    campaign = await launch(
        tenant,
        callbackId=cbid,
        remote=HORN,
        vinPrefix="VF3ATEST",
        rate={"perMinute": 600},
        startsAt=isoformat(clock() + timedelta(minutes=10)),
    )
    assert campaign["targets"]["total"] == 3  # the tenant's three cars match the prefix
    run = runner(app, clock)
    assert await run.run_once() == 0
    assert (await seen(tenant, campaign))["status"] == "Scheduled"
    clock.advance(600)
    assert await run.run_once() == 1
    assert (await seen(tenant, campaign))["status"] == "Running"


async def test_too_many_failures_abort_the_campaign(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant
) -> None:
    vehicle_ids = await more_vehicles(db, tenant, clock, 6)
    cbid = await create_callback(tenant)
    campaign = await launch(
        tenant,
        callbackId=cbid,
        remote=HORN,
        vehicles=vehicle_ids,
        rate={"perMinute": 60},
        abortThreshold={"failedPercent": 50, "minFinished": 2},
    )
    run = runner(app, clock)
    clock.advance(1)
    assert await run.run_once() == 2
    await fail_all(db, clock, "VehicleError")
    clock.advance(1)
    assert await run.run_once() == 0
    progress = await seen(tenant, campaign)
    assert progress["status"] == "Aborted"
    assert "2 of 2 finished remotes failed" in progress["reason"]
    assert progress["targets"]["cancelled"] == 4
    assert progress["remotes"]["byFailureCause"] == {"VehicleError": 2}
    clock.advance(60)
    assert await run.run_once() == 0


async def test_cancel_stops_what_has_not_started(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant
) -> None:
    vehicle_ids = await more_vehicles(db, tenant, clock, 4)
    cbid = await create_callback(tenant)
    campaign = await launch(
        tenant, callbackId=cbid, remote=HORN, vehicles=vehicle_ids, rate={"perMinute": 1}
    )
    run = runner(app, clock)
    assert await run.run_once() == 1
    path = f"{tenant.fleet}/remote/campaigns/{campaign['campaignId']}/cancel"
    answer = await tenant.http.post(path)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Cancelled"
    assert answer.json()["targets"] == {
        "total": 4,
        "pending": 0,
        "started": 1,
        "refused": 0,
        "cancelled": 3,
    }
    clock.advance(3600)
    assert await run.run_once() == 0
    again = await tenant.http.post(path)
    assert again.status_code == 409
    assert again.json()["code"] == 40905


async def test_a_retried_start_never_sends_a_vehicle_the_remote_twice(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant
) -> None:
    """The runner died after the acceptor stored a target's remote, before marking it."""
    cbid = await create_callback(tenant)
    vid = tenant.vehicles["Electric"].id
    campaign = await launch(
        tenant, callbackId=cbid, remote=HORN, vehicles=[vid], rate={"perMinute": 60}
    )
    first = await tenant.http.post(
        f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes",
        json=HORN,
        headers={"Idempotency-Key": f"campaign-{campaign['campaignId']}-{vid}"},
    )
    assert await runner(app, clock).run_once() == 1
    async with db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(remotes))).scalar_one()
    assert stored == 1
    assert (await seen(tenant, campaign))["remotes"]["byStatus"] == {"Accepted": 1}
    assert first.json()["remoteActionId"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"remote": {"preconditioning": {"airConditioning": {"immediate": True}}}}, 400, 40005),
        ({"vehicles": ["e" * 32]}, 400, 40002),
        ({"vinPrefix": "VF3"}, 400, 40002),  # both a list and a prefix
        ({"remote": {"horn": {}}}, 400, 40002),
        ({"rate": {"perMinute": 0}}, 400, 40002),
        ({"callbackId": "c" * 32}, 404, 40403),
        ({"startsAt": "soon"}, 400, 40000),
    ],
    ids=["capability", "not in fleet", "list and prefix", "body", "rate", "callback", "start"],
)
async def test_refusals_store_nothing(
    db: Database, tenant: Tenant, change: dict[str, Any], status: int, code: int
) -> None:
    cbid = await create_callback(tenant)
    body = {
        "callbackId": cbid,
        "remote": HORN,
        "vehicles": [v.id for v in tenant.vehicles.values()],
        "rate": {"perMinute": 60},
        **change,
    }
    answer = await tenant.http.post(f"{tenant.fleet}/remote/campaigns", json=body)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(campaigns))).scalar_one() == 0


async def test_another_partners_campaign_is_not_found(
    db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    cbid = await create_callback(tenant)
    campaign = await launch(
        tenant,
        callbackId=cbid,
        remote=HORN,
        vehicles=[tenant.vehicles["Electric"].id],
        rate={"perMinute": 60},
    )
    theirs = await other_tenant.http.get(
        f"{other_tenant.fleet}/remote/campaigns/{campaign['campaignId']}"
    )
    assert (theirs.status_code, theirs.json()["code"]) == (404, 40406)
    mine_elsewhere = await other_tenant.http.get(
        f"{tenant.fleet}/remote/campaigns/{campaign['campaignId']}"
    )
    assert mine_elsewhere.status_code == 404


async def test_serve_runs_campaigns_beside_the_api(db: Database) -> None:
    """The role ``keyfob serve`` hosts starts campaigns without anyone calling the runner."""
    application = create_app(
        make_settings(db.url),
        database=db,
        clock=utcnow,
        roles=[campaign_role],
        announce=lambda _: None,
    )
    async with application.router.lifespan_context(application):
        tenant = await make_tenant(application, db, "carol", utcnow())
        async with tenant.http:
            cbid = await create_callback(tenant)
            campaign = await launch(
                tenant,
                callbackId=cbid,
                remote=HORN,
                vehicles=[tenant.vehicles["Electric"].id],
                rate={"perMinute": 60},
            )
            ready = await tenant.http.get("/ready")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            progress = campaign
            while progress["status"] != "Completed" and loop.time() < deadline:
                await asyncio.sleep(0.05)
                progress = await seen(tenant, campaign)
    assert progress["status"] == "Completed", progress
    assert progress["targets"]["started"] == 1
    assert ready.status_code == 200, ready.text  # the runner's check: it is running
