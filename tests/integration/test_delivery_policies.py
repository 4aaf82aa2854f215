"""Retry policies per decision 4, driven by the injected clock (no sleeping through three days)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from datetime import UTC, datetime, timedelta

from aiohttp import web
from delivery_flow import Flow, delivery_flow, serve

from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database

HOUR = 3600


def down(_n: int) -> int:
    return 503


async def _failing_callback(flow: Flow, policy: dict[str, object]) -> tuple[str, str]:
    flow.hook.answer = down
    cbid = (await flow.callback(retryPolicy=policy))["callbackId"]
    rid = await flow.remote(cbid)
    return cbid, rid


def _spacing(times: list[datetime]) -> list[float]:
    """Seconds between consecutive attempts."""
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]


async def test_none_is_one_attempt_and_one_retry(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid, _ = await _failing_callback(flow, {"policy": "None", "retryDelay": 30})
        assert await flow.drain() == 1
        assert await flow.after(29) == 0
        assert await flow.after(1) == 1
        assert await flow.after(HOUR) == 0
        [delivery] = await flow.deliveries(cbid)
        times = await flow.attempt_times(cbid)
        status = await flow.status_of(cbid)
    assert len(flow.hook.requests) == 2
    assert _spacing(times) == [30.0]
    assert delivery["state"] == "abandoned"
    assert delivery["attempts"] == 2
    assert status == "Running", "an abandoned notification does not fail the callback"


async def test_bounded_makes_retry_number_retries_spaced_by_retry_delay(
    db: Database, clock: FakeClock
) -> None:
    # A start with a fraction of a second: each retry must fall due exactly on time.
    clock.now = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    async with delivery_flow(db, clock) as flow:
        policy = {"policy": "Bounded", "retryNumber": 3, "retryDelay": 20}
        cbid, _ = await _failing_callback(flow, policy)
        made = [await flow.drain()]
        for _ in range(6):
            made.append(await flow.after(10))
        [delivery] = await flow.deliveries(cbid)
        times = await flow.attempt_times(cbid)
    assert made == [1, 0, 1, 0, 1, 0, 1]
    assert _spacing(times) == [20.0, 20.0, 20.0]
    assert delivery["state"] == "abandoned"
    assert delivery["attempts"] == 4


async def test_bounded_defaults_are_three_retries_ten_seconds_apart(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid, _ = await _failing_callback(flow, {"policy": "Bounded"})
        await flow.drain()
        for _ in range(5):
            await flow.after(10)
        times = await flow.attempt_times(cbid)
    assert _spacing(times) == [10.0, 10.0, 10.0]


async def test_a_retry_that_succeeds_stops_retrying(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        policy = {"policy": "Bounded", "retryNumber": 5, "retryDelay": 10}
        cbid, _ = await _failing_callback(flow, policy)
        flow.hook.answer = lambda n: 503 if n < 3 else 204
        await flow.drain()
        await flow.after(10)
        await flow.after(10)
        assert await flow.after(HOUR) == 0
        [delivery] = await flow.deliveries(cbid)
    assert len(flow.hook.requests) == 3
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 3


async def test_always_retries_every_delay_until_the_72_hour_horizon(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid, rid = await _failing_callback(flow, {"policy": "Always", "retryDelay": 6 * HOUR})
        raised = clock()
        await flow.drain()
        while clock() - raised < timedelta(hours=80):
            await flow.after(6 * HOUR)
        [delivery] = await flow.deliveries(cbid)
        times = await flow.attempt_times(cbid)
        status = await flow.status_of(cbid)
        blocked = await flow.tenant.http.post(
            f"{flow.tenant.fleet}/vehicles/{flow.tenant.vehicles['Electric'].id}"
            f"/callbacks/{cbid}/remotes",
            json={"door": {"state": "Unlocked"}},
        )
    assert len(times) == 13, "attempts at 0, 6, 12, ... 72 h"
    assert set(_spacing(times)) == {6 * HOUR}
    assert times[-1] - times[0] == timedelta(hours=72)
    assert delivery["remoteActionId"] == rid
    assert delivery["state"] == "expired"
    assert status == "Failed"
    assert blocked.status_code == 409
    assert blocked.json()["code"] == 40901


async def test_the_horizon_caps_bounded_retries_too(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        policy = {"policy": "Bounded", "retryNumber": 10, "retryDelay": 30 * HOUR}
        cbid, _ = await _failing_callback(flow, policy)
        await flow.drain()
        for _ in range(4):
            await flow.after(30 * HOUR)
        [delivery] = await flow.deliveries(cbid)
        status = await flow.status_of(cbid)
    assert len(flow.hook.requests) == 3, "at 0, 30 h and 60 h; 90 h is past the horizon"
    assert delivery["state"] == "expired"
    assert status == "Failed"


async def test_a_notification_reached_too_late_expires_unsent(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(retryPolicy={"policy": "Always", "retryDelay": 60}))[
            "callbackId"
        ]
        await flow.remote(cbid)
        assert await flow.after(72 * HOUR + 1) == 0
        [delivery] = await flow.deliveries(cbid)
        status = await flow.status_of(cbid)
    assert flow.hook.requests == []
    assert delivery["state"] == "expired"
    assert status == "Failed"


async def test_any_2xx_is_delivered_and_any_other_status_is_a_failure(
    db: Database, clock: FakeClock
) -> None:
    answers = {1: 302, 2: 404, 3: 429, 4: 500, 5: 202}
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = answers.__getitem__
        retry = {"policy": "Bounded", "retryNumber": 5, "retryDelay": 1}
        cbid = (await flow.callback(retryPolicy=retry))["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        for _ in range(5):
            await flow.after(1)
        [delivery] = await flow.deliveries(cbid)
        log = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert [a["statusCode"] for a in log] == [302, 404, 429, 500, 202]
    assert [a["outcome"] for a in log] == ["failed"] * 4 + ["delivered"]
    assert delivery["state"] == "delivered"


async def test_a_time_out_is_a_failure_that_is_retried(db: Database, clock: FakeClock) -> None:
    calls: list[float] = []

    async def slow(_request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(0.5)
        return web.Response(text="ok")

    async with serve(slow) as base, delivery_flow(db, clock, timeout=0.2) as flow:
        retry = {"policy": "Bounded", "retryNumber": 1, "retryDelay": 5}
        cbid = (await flow.callback(base + "/hook", retryPolicy=retry))["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        await flow.after(5)
        [delivery] = await flow.deliveries(cbid)
        log = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert [(a["errorClass"], a["statusCode"]) for a in log] == [("timeout", None), (None, 200)]
    assert delivery["state"] == "delivered"


async def test_a_connection_error_is_a_failure_that_is_retried(
    db: Database, clock: FakeClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The socket is closed: nothing listens on that port any more.
    async with delivery_flow(db, clock) as flow:
        retry = {"policy": "Bounded", "retryNumber": 1, "retryDelay": 5}
        cbid = (await flow.callback(f"http://127.0.0.1:{port}/hook", retryPolicy=retry))[
            "callbackId"
        ]
        await flow.remote(cbid)
        await flow.drain()
        await flow.after(5)
        [delivery] = await flow.deliveries(cbid)
        log = (await flow.delivery(cbid, delivery["id"]))["attemptLog"]
    assert [a["errorClass"] for a in log] == ["connect", "connect"]
    assert delivery["state"] == "abandoned"
