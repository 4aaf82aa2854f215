"""A remote's events follow each other through the worker without a record in between.

Events of one remote are delivered in order, and an event used to be claimable only once the
previous one was recorded delivered: every event of a remote cost a claim, a POST and a record
one after the other, about four round trips of the database per remote before its Done reached
the partner. Now a worker that holds an earlier event may claim the later ones and sends each
once the POST before it succeeded; if it failed, the later ones are given back unsent and wait
for its retry, so order holds either way.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from delivery_flow import Flow, delivery_flow, serve
from sqlalchemy import select

from keyfob.kit.clock import FakeClock
from keyfob.notifications.models import notifications
from keyfob.store.engine import Database

RECORD_EVERY_S = 5.0
"""Long enough that nothing is recorded while the test looks, short enough to stop quickly."""


async def _until(flow: Flow, requests: int, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while len(flow.hook.requests) < requests:
            await asyncio.sleep(0.01)


async def _held(flow: Flow, callback_id: str) -> list[tuple[int, bool]]:
    """Each row's attempts so far and whether it is leased, in the remote's order."""
    async with flow.db.read() as conn:
        rows = await conn.execute(
            select(notifications.c.attempts, notifications.c.lease_owner.is_not(None))
            .where(notifications.c.callback_id == callback_id)
            .order_by(notifications.c.seq)
        )
        return [(attempts, bool(leased)) for attempts, leased in rows]


async def test_a_remotes_events_are_sent_before_the_first_is_recorded(
    db: Database, clock: FakeClock
) -> None:
    options = {"record_every_s": RECORD_EVERY_S, "poll_s": 0.02}
    async with delivery_flow(db, clock, **options) as flow:
        cbid = (await flow.callback())["callbackId"]
        rid = await flow.remote(cbid)
        await flow.pending(rid, "SentToVehicle")
        await flow.done(rid)
        running = asyncio.create_task(flow.work.run(), name="worker-under-test")
        try:
            await _until(flow, 3)
            # Every event reached the receiver while none was recorded yet.
            assert await flow.states(cbid) == ["pending"] * 3
        finally:
            flow.work.stop()
            await running
        assert await flow.states(cbid) == ["delivered"] * 3
    assert flow.hook.statuses_of(rid) == ["Accepted", "SentToVehicle", "Success"]


async def test_when_an_event_fails_the_ones_after_it_wait_for_its_retry(
    db: Database, clock: FakeClock
) -> None:
    seen: list[str] = []

    async def first_fails_slowly(request: web.Request) -> web.Response:
        body = await request.json()
        seen.extend(event["eventStatus"]["status"] for event in body["events"])
        if len(seen) == 1:
            await asyncio.sleep(1.0)  # the later events are claimed behind it meanwhile
            return web.Response(status=500)
        return web.Response(text="ok")

    async with (
        serve(first_fails_slowly) as base,
        delivery_flow(db, clock, record_every_s=0.01, poll_s=0.02) as flow,
    ):
        retry = {"policy": "Always", "retryDelay": 10}
        cbid = (await flow.callback(base + "/hook", retryPolicy=retry))["callbackId"]
        rid = await flow.remote(cbid)
        running = asyncio.create_task(flow.work.run(), name="worker-under-test")
        try:
            async with asyncio.timeout(30):
                while not seen:
                    await asyncio.sleep(0.01)
            await flow.pending(rid, "SentToVehicle")
            await flow.done(rid)
            flow.work.wake()
            async with asyncio.timeout(30):  # the first recorded in retry, the others given back
                while await _held(flow, cbid) != [(1, False), (0, False), (0, False)]:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            assert seen == ["Accepted"], "nothing overtakes an event in retry"
            flow.clock.advance(10)
            flow.work.wake()
            async with asyncio.timeout(30):
                while len(seen) < 4:
                    await asyncio.sleep(0.01)
        finally:
            flow.work.stop()
            await running
        assert await flow.states(cbid) == ["delivered"] * 3
    assert seen == ["Accepted", "Accepted", "SentToVehicle", "Success"]
