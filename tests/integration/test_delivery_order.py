"""Per-remote order: a later event of a remote never overtakes an earlier one; others go on."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from delivery_flow import Flow, delivery_flow, serve

from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import FakeClock
from keyfob.notifications import queue
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.store.engine import Database


def _failing_for(flow: Flow, remote_id: str, times: int) -> None:
    """The receiver refuses the first ``times`` requests about ``remote_id``."""
    refused: list[int] = []

    def answer(n: int) -> int:
        [event, *_] = flow.hook.requests[n - 1]["json"]["events"]
        if event["remoteActionId"] == remote_id and len(refused) < times:
            refused.append(n)
            return 500
        return 200

    flow.hook.answer = answer


async def test_later_events_wait_for_an_earlier_one_in_retry(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        retry = {"policy": "Bounded", "retryNumber": 3, "retryDelay": 30}
        cbid = (await flow.callback(retryPolicy=retry))["callbackId"]
        rid = await flow.remote(cbid)
        _failing_for(flow, rid, 2)
        assert await flow.drain() == 1
        flow.clock.advance(1)
        await flow.pending(rid, "SentToVehicle")
        flow.clock.advance(1)
        await flow.done(rid)
        assert await flow.drain() == 0, "Accepted is in retry: nothing may overtake it"
        assert await flow.after(28) == 1
        assert await flow.after(29) == 0
        assert await flow.after(1) == 3
    assert flow.hook.statuses_of(rid) == [
        "Accepted",
        "Accepted",
        "Accepted",
        "SentToVehicle",
        "Success",
    ]


async def test_an_abandoned_event_lets_the_next_one_go(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(retryPolicy={"policy": "None", "retryDelay": 10}))["callbackId"]
        rid = await flow.remote(cbid)
        _failing_for(flow, rid, 2)
        await flow.done(rid)
        await flow.drain()
        await flow.after(10)
        states = [d["state"] for d in await flow.deliveries(cbid)]
    assert flow.hook.statuses_of(rid) == ["Accepted", "Accepted", "Success"]
    assert states == ["abandoned", "delivered"]


async def test_a_remote_in_retry_does_not_hold_back_another_remote(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        retry = {"policy": "Always", "retryDelay": 600}
        cbid = (await flow.callback(retryPolicy=retry))["callbackId"]
        stuck = await flow.remote(cbid, "Electric")
        _failing_for(flow, stuck, 1000)
        moving = await flow.remote(cbid, "Hybrid")
        await flow.drain()
        flow.clock.advance(5)
        await flow.pending(stuck, "SentToVehicle")
        await flow.pending(moving, "SentToVehicle")
        flow.clock.advance(5)
        await flow.done(stuck)
        await flow.done(moving)
        await flow.drain()
    assert flow.hook.statuses_of(moving) == ["Accepted", "SentToVehicle", "Success"]
    assert flow.hook.statuses_of(stuck) == ["Accepted"]


POSTGRES_ONLY = pytest.mark.parametrize("db", ["postgres"], indirect=True)


class Recorder:
    """A receiver that notes every event it gets and how many came in each POST."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.sizes: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.seen.extend((e["remoteActionId"], e["sequence"]) for e in body["events"])
        self.sizes.append(len(body["events"]))
        await asyncio.sleep(0.01)
        return web.Response(text="ok")

    def assert_each_once_in_order(self, remote_ids: list[str], per_remote: int) -> None:
        assert len(self.seen) == len(remote_ids) * per_remote
        assert Counter(self.seen).most_common(1)[0][1] == 1, "a notification was posted twice"
        for rid in remote_ids:
            assert [seq for r, seq in self.seen if r == rid] == list(range(1, per_remote + 1))


async def _lifecycles(flow: Flow, callback_id: str, count: int) -> list[str]:
    """``count`` remotes through the callback, each with three events ready to go."""
    vehicles = ["Electric", "Hybrid", "Thermic"]
    remote_ids = [await flow.remote(callback_id, vehicles[n % 3]) for n in range(count)]
    for rid in remote_ids:
        await flow.pending(rid, "SentToVehicle")
        await flow.done(rid)
    return remote_ids


async def _race(
    db: Database, clock: FakeClock, recorder: Recorder, expected: int, *, tick: float = 0
) -> list[DeliveryWorker]:
    """Two workers with their own owners run until ``expected`` events arrived, and a bit more.

    ``tick`` moves the clock on (seconds) every few milliseconds, for batch windows.
    """
    workers = [_worker(db, clock, owner) for owner in ("worker-a", "worker-b")]
    loops = [asyncio.create_task(w.run(), name=f"run-{n}") for n, w in enumerate(workers)]
    try:
        async with asyncio.timeout(20):
            while len(recorder.seen) < expected:
                await asyncio.sleep(0.02)
                clock.advance(tick)
            await asyncio.sleep(0.2)  # room for a duplicate to show up
    finally:
        for work in workers:
            work.stop()
        await asyncio.gather(*loops)
        for work in workers:
            await work.sender.close()
    return workers


@POSTGRES_ONLY
async def test_two_workers_never_post_one_notification_twice(
    db: Database, clock: FakeClock
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle) as base, delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(base + "/hook"))["callbackId"]
        remote_ids = await _lifecycles(flow, cbid, 15)
        workers = await _race(db, clock, recorder, 3 * len(remote_ids))
        states = Counter(d["state"] for d in await _all_deliveries(flow, cbid))
    recorder.assert_each_once_in_order(remote_ids, 3)
    assert states == {"delivered": 3 * len(remote_ids)}
    shares = [_delivered(work) for work in workers]
    assert sum(shares) == len(recorder.seen)
    assert min(shares) > 0, f"both workers should have taken a share: {shares}"


@POSTGRES_ONLY
async def test_two_workers_share_batches_without_overlap_or_reordering(
    db: Database, clock: FakeClock
) -> None:
    recorder = Recorder()
    async with serve(recorder.handle) as base, delivery_flow(db, clock) as flow:
        batch = {"size": 4, "timeWindow": 5}
        cbid = (await flow.callback(base + "/hook", batchNotify=batch))["callbackId"]
        remote_ids = await _lifecycles(flow, cbid, 6)
        await _race(db, clock, recorder, 3 * len(remote_ids), tick=1)
    recorder.assert_each_once_in_order(remote_ids, 3)
    assert max(recorder.sizes) <= 4
    assert len(recorder.sizes) < len(recorder.seen), "events were batched"


@POSTGRES_ONLY
async def test_a_batch_being_claimed_is_not_split_between_workers(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 2, "timeWindow": 5}))["callbackId"]
        rid = (await _lifecycles(flow, cbid, 1))[0]
        lease = timedelta(seconds=30)
        async with db.transaction() as first:
            taken = await queue.claim(first, owner="a", now=clock(), lease=lease, limit=2)
            # The first claim is not committed yet: its rows look free, but are locked.
            async with db.transaction() as second:
                meanwhile = await queue.claim(second, owner="b", now=clock(), lease=lease, limit=9)
    assert [[(r.remote_id, r.seq) for r in d.rows] for d in taken] == [[(rid, 1), (rid, 2)]]
    assert meanwhile == [], "the Done event must not leave ahead of the two before it"


def _worker(db: Database, clock: FakeClock, owner: str) -> DeliveryWorker:
    metrics = DeliveryMetrics()
    sender = WebhookSender(TargetPolicy(allow_private=True), timeout=2.0, metrics=metrics)
    # A lease far longer than the test: a row may come back only if a worker lost it.
    options = WorkerOptions(
        owner=owner, claim_limit=3, max_in_flight=6, poll_s=0.01, lease_s=86_400
    )
    return DeliveryWorker(db, sender, clock=clock, options=options, metrics=metrics)


def _delivered(work: DeliveryWorker) -> int:
    assert work.metrics is not None
    value = work.metrics.registry.get_sample_value(
        "keyfob_webhook_deliveries_total", {"outcome": "delivered"}
    )
    return int(value or 0)


async def _all_deliveries(flow: Flow, callback_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, 200, 60):
        page = await flow.deliveries(callback_id, indexRange=f"{start}-{start + 59}")
        found.extend(page)
        if len(page) < 60:
            break
    return found
