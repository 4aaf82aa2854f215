"""batchNotify: one POST carries up to ``size`` events, sent when full or ``timeWindow`` is up."""

from __future__ import annotations

from delivery_flow import delivery_flow, event_keys

from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms


async def test_a_full_batch_goes_at_once_in_the_order_events_were_raised(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        batch = {"size": 3, "timeWindow": 60}
        cbid = (await flow.callback(batchNotify=batch))["callbackId"]
        first = await flow.remote(cbid, "Electric")
        flow.clock.advance(1)
        second = await flow.remote(cbid, "Hybrid")
        assert await flow.drain() == 0, "two of three: the batch waits"
        flow.clock.advance(1)
        third = await flow.remote(cbid, "Thermic")
        assert await flow.drain() == 1
    [request] = flow.hook.requests
    assert_conforms("b2b-webhook", "RemoteEvents", request["json"])
    assert request["json"]["callbackId"] == cbid
    assert event_keys(request) == [(first, 1), (second, 1), (third, 1)]


async def test_more_than_a_batch_is_split_and_the_rest_waits_for_the_window(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 2, "timeWindow": 30}))["callbackId"]
        for vehicle in ("Electric", "Hybrid", "Thermic", "Electric", "Hybrid"):
            await flow.remote(cbid, vehicle)
        assert await flow.drain() == 2
        assert [len(b["events"]) for b in flow.hook.bodies] == [2, 2]
        assert await flow.after(29) == 0
        assert await flow.after(1) == 1
    assert [len(b["events"]) for b in flow.hook.bodies] == [2, 2, 1]
    assert len({e["remoteActionId"] for e in flow.hook.events}) == 5


async def test_a_partial_batch_is_sent_when_the_time_window_is_up(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 10, "timeWindow": 20}))["callbackId"]
        early = await flow.remote(cbid, "Electric")
        assert await flow.after(15) == 0
        late = await flow.remote(cbid, "Hybrid")
        assert await flow.after(4) == 0
        assert await flow.after(1) == 1, "20 s after the first event was raised"
    [request] = flow.hook.requests
    assert event_keys(request) == [(early, 1), (late, 1)]


async def test_the_default_time_window_is_sixty_seconds(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 5}))["callbackId"]
        await flow.remote(cbid)
        assert await flow.after(59) == 0
        assert await flow.after(1) == 1


async def test_events_of_one_remote_share_a_batch_in_sequence(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(batchNotify={"size": 3, "timeWindow": 60}))["callbackId"]
        rid = await flow.remote(cbid)
        flow.clock.advance(1)
        await flow.pending(rid, "SentToVehicle")
        flow.clock.advance(1)
        await flow.done(rid)
        assert await flow.drain() == 1
    [request] = flow.hook.requests
    assert event_keys(request) == [(rid, 1), (rid, 2), (rid, 3)]
    assert [e["eventStatus"]["status"] for e in request["json"]["events"]] == [
        "Accepted",
        "SentToVehicle",
        "Success",
    ]


async def test_a_header_that_varies_per_event_disables_batching(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        attributes = [{"type": "Header", "key": "X-Vehicle", "value": "$vin"}]
        cbid = (await flow.callback(attributes=attributes, batchNotify={"size": 3}))["callbackId"]
        for vehicle in ("Electric", "Hybrid", "Thermic"):
            await flow.remote(cbid, vehicle)
        assert await flow.drain() == 3
    for request in flow.hook.requests:
        [event] = request["json"]["events"]
        assert request["headers"]["X-Vehicle"] == event["vin"]


async def test_a_query_that_varies_per_event_disables_batching(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        attributes = [{"type": "Query", "key": "type", "value": "$remoteType"}]
        cbid = (await flow.callback(attributes=attributes, batchNotify={"size": 2}))["callbackId"]
        await flow.remote(cbid, "Electric")
        await flow.remote(cbid, "Hybrid", {"horn": {"state": "Activated"}})
        assert await flow.drain() == 2
    assert sorted(r["query"]["type"] for r in flow.hook.requests) == ["Doors", "Horn"]


async def test_per_callback_values_keep_batching_and_are_rendered_once(
    db: Database, clock: FakeClock
) -> None:
    attributes = [
        {"type": "Header", "key": "X-Callback", "value": "$callbackID"},
        {"type": "Query", "key": "fleet", "value": "$fleetID"},
    ]
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(attributes=attributes, batchNotify={"size": 2}))["callbackId"]
        await flow.remote(cbid, "Electric")
        await flow.remote(cbid, "Hybrid")
        assert await flow.drain() == 1
    [request] = flow.hook.requests
    assert request["headers"]["X-Callback"] == cbid
    assert request["query"] == {"fleet": flow.tenant.fleet_id}
    assert len(request["json"]["events"]) == 2


async def test_a_failed_batch_is_retried_whole_under_the_same_message_id(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = lambda n: 500 if n == 1 else 200
        retry = {"policy": "Bounded", "retryNumber": 2, "retryDelay": 10}
        cbid = (await flow.callback(batchNotify={"size": 2}, retryPolicy=retry))["callbackId"]
        await flow.remote(cbid, "Electric")
        await flow.remote(cbid, "Hybrid")
        assert await flow.drain() == 1
        assert await flow.after(9) == 0
        assert await flow.after(1) == 1
        states = [d["state"] for d in await flow.deliveries(cbid)]
    first, second = flow.hook.requests
    assert event_keys(first) == event_keys(second)
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert states == ["delivered", "delivered"]
