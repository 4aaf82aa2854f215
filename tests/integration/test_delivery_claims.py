"""How a claim takes what is due: every ready batch at once, several POSTs under way, the
horizon sweep on its own timer, and the indexes the claim reads (migration 0002)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp import web
from delivery_flow import Flow, delivery_flow, event_keys, serve
from sqlalchemy import Connection, inspect

from keyfob.kit.clock import FakeClock
from keyfob.notifications import queue
from keyfob.notifications.models import delivery_attempts
from keyfob.store import migrate
from keyfob.store.engine import Database

HOUR = 3600
VEHICLES = ("Electric", "Hybrid", "Thermic")


async def test_every_ready_batch_leaves_in_one_cycle(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 2, "timeWindow": 60}))["callbackId"]
        for n in range(7):
            await flow.remote(cbid, VEHICLES[n % 3])
        first_cycle = await flow.work.run_once()
        second_cycle = await flow.work.run_once()
        assert await flow.after(60) == 1, "the seventh leaves when its window is up"
    assert (first_cycle, second_cycle) == (3, 0)
    assert [len(b["events"]) for b in flow.hook.bodies[:3]] == [2, 2, 2]


async def test_a_remote_never_spans_two_batches_of_one_cycle(
    db: Database, clock: FakeClock
) -> None:
    """Batches of one cycle travel side by side: a later event waits for the next cycle."""
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 2, "timeWindow": 60}))["callbackId"]
        busy = await flow.remote(cbid, "Electric")
        other = await flow.remote(cbid, "Hybrid")
        flow.clock.advance(1)
        await flow.pending(busy, "SentToVehicle")
        await flow.done(busy)
        cycles = [await flow.work.run_once() for _ in range(3)]
    assert cycles == [1, 1, 0]
    first, second = flow.hook.requests
    assert event_keys(first) == [(busy, 1), (other, 1)]
    assert event_keys(second) == [(busy, 2), (busy, 3)]


async def test_batches_of_one_callback_are_posted_side_by_side(
    db: Database, clock: FakeClock
) -> None:
    open_now = 0
    most = 0
    three_open = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        nonlocal open_now, most
        await request.read()
        open_now += 1
        most = max(most, open_now)
        if open_now >= 3:
            three_open.set()
        # Answers once three are open at once, or after a while if they never are.
        await asyncio.wait({asyncio.create_task(three_open.wait())}, timeout=2)
        open_now -= 1
        return web.Response(text="ok")

    # No polling: what goes out together is what one claim found ready.
    async with serve(slow) as base, delivery_flow(db, clock, poll_s=30) as flow:
        batch = {"size": 2, "timeWindow": 60}
        cbid = (await flow.callback(base + "/hook", batchNotify=batch))["callbackId"]
        for n in range(6):
            await flow.remote(cbid, VEHICLES[n % 3])
        await _run_until_delivered(flow, cbid, 6)
    assert most == 3


async def test_the_horizon_sweep_runs_on_its_own_while_nothing_can_be_claimed(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock, expire_every_s=0.01, poll_s=0.01) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        await flow.set_status(cbid, "Paused")
        flow.clock.advance(72 * HOUR + 1)
        running = asyncio.create_task(flow.work.run())
        try:
            async with asyncio.timeout(5):
                while await flow.states(cbid) != ["expired"]:
                    await asyncio.sleep(0.01)
        finally:
            flow.work.stop()
            await running
        status = await flow.status_of(cbid)
    assert status == "Paused"


async def test_a_row_past_the_horizon_is_never_claimed_even_before_the_sweep(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        flow.clock.advance(72 * HOUR + 1)
        claimed = await flow.work.claim(10)
        expired = await flow.work.expire()
        status = await flow.status_of(cbid)
    assert claimed == []
    assert expired == 1
    assert status == "Failed"
    assert flow.hook.requests == []


POSTGRES_ONLY = pytest.mark.parametrize("db", ["postgres"], indirect=True)


@POSTGRES_ONLY
async def test_a_batch_is_claimed_while_an_attempt_of_its_callback_is_being_recorded(
    db: Database, clock: FakeClock
) -> None:
    """Recording an attempt locks the callback's key; that must not make claims skip it."""
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 2, "timeWindow": 60}))["callbackId"]
        await flow.remote(cbid, "Electric")
        await flow.remote(cbid, "Hybrid")
        lease = timedelta(seconds=30)
        async with db.transaction() as recording:
            await recording.execute(
                delivery_attempts.insert().values(
                    callback_id=cbid,
                    message_id="msg_earlier",
                    notification_ids=[],
                    started_at=clock(),
                    outcome="delivered",
                )
            )
            async with db.transaction() as claiming:
                taken = await queue.claim(claiming, owner="w", now=clock(), lease=lease, limit=9)
    assert [len(d.rows) for d in taken] == [2]


async def test_the_migration_round_trip_leaves_the_claim_indexes(db: Database) -> None:
    def downgrade(connection: Connection) -> None:
        from alembic import command

        command.downgrade(migrate.alembic_config(connection), "0001")

    def index_names(connection: Connection) -> set[str]:
        return {str(i["name"]) for i in inspect(connection).get_indexes("notifications")}

    async with db.engine.begin() as conn:
        await conn.run_sync(downgrade)
    async with db.engine.connect() as conn:
        before = await conn.run_sync(index_names)
    await migrate.upgrade(db)
    async with db.engine.connect() as conn:
        after = await conn.run_sync(index_names)
    assert "ix_notifications_state_due" in before
    assert "ix_notifications_pending_due" not in before
    assert "ix_notifications_state_due" not in after
    assert "ix_notifications_pending_due" in after
    # 0002 gave PostgreSQL a pending-by-remote index; 0008 took it away (the probe reads
    # ix_notifications_remote_seq on both databases).
    assert "ix_notifications_pending_remote" not in after


async def _run_until_delivered(flow: Flow, callback_id: str, events: int) -> None:
    running = asyncio.create_task(flow.work.run())
    try:
        async with asyncio.timeout(10):
            while await flow.states(callback_id) != ["delivered"] * events:
                await asyncio.sleep(0.02)
    finally:
        flow.work.stop()
        await running


async def test_one_claim_serves_a_batching_callback_and_one_posting_event_by_event(
    db: Database, clock: FakeClock
) -> None:
    """A claim finds what a callback of each kind has due, whichever way it takes them."""
    async with delivery_flow(db, clock) as flow:
        single = (await flow.callback())["callbackId"]
        remote = await flow.remote(single, "Electric")
        assert await flow.work.run_once() == 1, "alone, the event-by-event callback's row"
        batching = (await flow.callback(batchNotify={"size": 2, "timeWindow": 60}))["callbackId"]
        await flow.remote(batching, "Hybrid")
        await flow.remote(batching, "Thermic")
        await flow.pending(remote, "SentToVehicle")
        assert await flow.work.run_once() == 2, "one batch and one single event, in one cycle"
    posted = sorted(len(body.get("events", [])) for body in flow.hook.bodies)
    assert posted == [1, 1, 2]
