"""The console's overview: remotes per minute, outcomes and failing deliveries of one fleet,
counted from the database, another tenant's remotes left out."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from conftest import Tenant, create_callback
from console_support import browser_http, sign_in
from keyfob.kit.clock import FakeClock
from keyfob.notifications.models import notifications
from keyfob.remotes.models import remotes
from keyfob.store.engine import Database


async def post(tenant: Tenant, callback_id: str, body: dict[str, Any]) -> str:
    vid = tenant.vehicles["Electric"].id
    answer = await tenant.http.post(
        f"{tenant.fleet}/vehicles/{vid}/callbacks/{callback_id}/remotes", json=body
    )
    assert answer.status_code == 202, answer.text
    remote_id: str = answer.json()["remoteActionId"]
    return remote_id


def cells(page: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table class="grid" id="{table}">(.*?)</table>', page, re.S)
    assert body, page
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    found = [re.findall(r"<td>(?:<a [^>]*>)?([^<]*)", row) for row in rows]
    return [row for row in found if row]  # not the header


async def test_the_overview_counts_this_fleets_remotes_and_failing_deliveries(
    app: Any, db: Database, clock: FakeClock, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await create_callback(tenant)
    theirs = await create_callback(other_tenant)
    first = await post(tenant, mine, {"horn": {"state": "Activated"}})
    clock.advance(120)
    await post(tenant, mine, {"lights": {"on": True}})
    await post(tenant, mine, {"door": {"state": "Locked"}})
    for _ in range(4):
        await post(other_tenant, theirs, {"horn": {"state": "Activated"}})
    async with db.transaction() as conn:  # as the dispatcher and the worker would leave them
        await conn.execute(
            update(remotes)
            .where(remotes.c.id == first)
            .values(phase="done", status="Failed", failure_cause="VehicleBatteryLow")
        )
        await conn.execute(
            update(notifications)
            .where(notifications.c.remote_id == first)
            .values(state="abandoned", attempts=4)
        )
    async with browser_http(app) as client:
        await sign_in(client, tenant)
        page = (await client.get(f"/console/fleets/{tenant.fleet_id}/overview")).text
        foreign = await client.get(f"/console/fleets/{other_tenant.fleet_id}/overview")
    assert "3 remotes in the last hour; at most 2 in one minute." in page
    assert cells(page, "outcomes") == [
        ["Done · Failed", "VehicleBatteryLow", "1"],
        ["Pending · Accepted", "—", "2"],
    ]
    assert cells(page, "failing") == [["ops", "1", "0"]]
    assert foreign.status_code == 404
