"""The console shows a fleet's campaigns with their progress and cancels one (both engines)."""

from __future__ import annotations

from typing import Any

from conftest import Tenant, create_callback
from console_support import browser_http, csrf_of, sign_in
from keyfob.kit.clock import FakeClock
from keyfob.remotes.control.campaign_runner import CampaignRunner
from keyfob.store.engine import Database

HORN = {"horn": {"state": "Activated"}}


async def test_the_console_lists_campaigns_and_cancels_one(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant, other_tenant: Tenant
) -> None:
    cbid = await create_callback(tenant)
    created = await tenant.http.post(
        f"{tenant.fleet}/remote/campaigns",
        json={
            "callbackId": cbid,
            "remote": HORN,
            "vinPrefix": "VF3ATEST",
            "rate": {"perMinute": 1},
            "abortThreshold": {"failedPercent": 25},
        },
    )
    assert created.status_code == 202, created.text
    cid = created.json()["campaignId"]
    ctx = app.state.ctx
    assert await CampaignRunner(ctx.database, ctx.acceptor, clock=clock).run_once() == 1
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        page = await client.get(f"/console/fleets/{tenant.fleet_id}/campaigns")
        assert page.status_code == 200, page.text
        assert cid in page.text
        assert "Running" in page.text
        assert "1 started of 3, 2 to go" in page.text
        assert "Accepted 1" in page.text
        assert "stops above 25 % failed" in page.text
        forged = await client.post(
            f"/console/fleets/{tenant.fleet_id}/campaigns/{cid}/cancel", data={"csrf": "x"}
        )
        assert forged.status_code == 403
        answer = await client.post(
            f"/console/fleets/{tenant.fleet_id}/campaigns/{cid}/cancel",
            data={"csrf": csrf_of(page)},
        )
        assert answer.status_code == 303
        after = await client.get(answer.headers["location"])
    assert "Cancelled" in after.text
    assert "2 dropped" in after.text
    assert f"campaigns/{cid}/cancel" not in after.text  # nothing left to cancel
    progress = await tenant.http.get(f"{tenant.fleet}/remote/campaigns/{cid}")
    assert progress.json()["status"] == "Cancelled"
    async with browser_http(app) as client:
        await sign_in(client, other_tenant)
        theirs = await client.get(f"/console/fleets/{tenant.fleet_id}/campaigns")
    assert theirs.status_code == 404
