"""Callback status and delivery (decision 12): Paused holds, Failed stops, Running resumes."""

from __future__ import annotations

from delivery_flow import delivery_flow, event_keys

from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database

HOUR = 3600


async def test_paused_holds_everything_and_delivers_it_in_order_on_resume(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        first = await flow.remote(cbid, "Electric")
        second = await flow.remote(cbid, "Hybrid")
        await flow.set_status(cbid, "Paused")
        flow.clock.advance(5)
        await flow.pending(first, "SentToVehicle")
        await flow.done(first)
        await flow.done(second, "Failed", failure_cause="VehicleConnectionTimeout")
        assert await flow.drain() == 0
        assert await flow.after(10 * HOUR) == 0
        held = [d["state"] for d in await flow.deliveries(cbid)]
        await flow.set_status(cbid, "Running")
        await flow.drain()
        after = [d["state"] for d in await flow.deliveries(cbid)]
    assert held == ["pending"] * 5
    assert after == ["delivered"] * 5
    assert flow.hook.statuses_of(first) == ["Accepted", "SentToVehicle", "Success"]
    assert flow.hook.statuses_of(second) == ["Accepted", "Failed"]


async def test_a_paused_callback_holds_retries_too(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = lambda n: 500 if n == 1 else 200
        retry = {"policy": "Bounded", "retryNumber": 1, "retryDelay": 10}
        cbid = (await flow.callback(retryPolicy=retry))["callbackId"]
        rid = await flow.remote(cbid)
        await flow.drain()
        await flow.set_status(cbid, "Paused")
        assert await flow.after(HOUR) == 0, "the retry waits while Paused"
        await flow.set_status(cbid, "Running")
        assert await flow.drain() == 1
        [delivery] = await flow.deliveries(cbid)
    assert flow.hook.statuses_of(rid) == ["Accepted", "Accepted"]
    assert delivery["state"] == "delivered"


async def test_held_past_the_horizon_expires_without_failing_a_paused_callback(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        await flow.set_status(cbid, "Paused")
        assert await flow.after(72 * HOUR + 1) == 0
        status = await flow.status_of(cbid)
        await flow.set_status(cbid, "Running")
        assert await flow.drain() == 0
        [delivery] = await flow.deliveries(cbid)
    assert status == "Paused"
    assert delivery["state"] == "expired", "kept in the log, not delivered three days late"
    assert flow.hook.requests == []


async def test_failed_holds_other_notifications_until_put_running(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = lambda _n: 503
        retry = {"policy": "Always", "retryDelay": 12 * HOUR}
        cbid = (await flow.callback(retryPolicy=retry))["callbackId"]
        doomed = await flow.remote(cbid, "Electric")
        await flow.drain()
        flow.clock.advance(60 * HOUR)
        later = await flow.remote(cbid, "Hybrid")
        await flow.drain()
        await flow.after(12 * HOUR)
        status = await flow.status_of(cbid)
        failed_log = [(d["remoteActionId"], d["state"]) for d in await flow.deliveries(cbid)]
        posted_while_failed = len(flow.hook.requests)
        assert await flow.after(13 * HOUR) == 0, "its retry is due, but Failed holds it"
        flow.hook.answer = lambda _n: 200
        await flow.set_status(cbid, "Running")
        assert await flow.drain() == 1
    assert status == "Failed"
    assert failed_log == [(doomed, "expired"), (later, "pending")]
    assert len(flow.hook.requests) == posted_while_failed + 1
    assert event_keys(flow.hook.requests[-1]) == [(later, 1)]


async def test_a_deleted_callback_drops_what_it_had_not_delivered(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = lambda _n: 503
        retry = {"policy": "Bounded", "retryNumber": 5, "retryDelay": 10}
        cbid = (await flow.callback(retryPolicy=retry))["callbackId"]
        rid = await flow.remote(cbid)
        await flow.done(rid)
        await flow.drain()
        answer = await flow.tenant.http.delete(flow.path(cbid))
        assert answer.status_code == 204, answer.text
        flow.hook.answer = lambda _n: 200
        assert await flow.after(HOUR) == 0
        states = await flow.states(cbid)
    assert states == ["dropped", "dropped"]
    assert len(flow.hook.requests) == 1
