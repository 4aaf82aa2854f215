"""A notification queued behind its receiver's concurrency limit keeps its lease.

With one connection per receiver and a receiver slower than the lease, the last notifications
of a claim wait longer than ``lease_s`` before their POST starts. Their leases must not run out
meanwhile, or a later claim takes them again and the receiver gets them twice. Real time here,
with a short lease, because what is tested is the race between waiting and expiring.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

from aiohttp import web
from delivery_flow import delivery_flow, serve

from keyfob.kit.clock import FakeClock, utcnow
from keyfob.store.engine import Database

VEHICLES = ("Electric", "Hybrid", "Thermic")
LEASE_S = 1.5
ANSWER_S = 0.5
QUEUED = 6
"""The last one waits ``(QUEUED - 1) * ANSWER_S`` = 2.5 s for its turn, past the lease."""


class WallClock(FakeClock):
    """The real time, where the stage expects a clock it could move."""

    def __call__(self) -> datetime:
        return utcnow()


async def test_a_slow_receiver_with_one_connection_gets_each_notification_once(
    db: Database,
) -> None:
    seen: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        body = await request.json()
        seen.extend(event["remoteActionId"] for event in body["events"])
        await asyncio.sleep(ANSWER_S)  # the receiver's own slowness, not a wait for the test
        return web.Response(text="ok")

    options = {"lease_s": LEASE_S, "poll_s": 0.05, "limit_per_host": 1}
    async with serve(slow) as base, delivery_flow(db, WallClock(), **options) as flow:
        cbid = (await flow.callback(base + "/hook"))["callbackId"]
        remote_ids = [await flow.remote(cbid, VEHICLES[n % 3]) for n in range(QUEUED)]
        running = asyncio.create_task(flow.work.run(), name="worker-under-test")
        try:
            async with asyncio.timeout(30):
                while await flow.states(cbid) != ["delivered"] * QUEUED:
                    await asyncio.sleep(0.05)
        finally:
            flow.work.stop()  # returns once every POST under way was made and recorded
            await running
        attempts = await flow.attempt_times(cbid)
    assert Counter(seen) == Counter(remote_ids), "each notification exactly once"
    assert len(attempts) == QUEUED
