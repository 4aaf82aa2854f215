"""The delivery log, its attempts, replaying, and the Prometheus numbers at /metrics."""

from __future__ import annotations

import httpx
from aiohttp import web
from delivery_flow import delivery_flow, serve

from conftest import make_tenant
from keyfob.kit.clock import FakeClock, isoformat
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.store.engine import Database

BOUNDED = {"policy": "Bounded", "retryNumber": 1, "retryDelay": 10}
LONG_ANSWER = ("0123456789abcdef" * 320).encode()  # 5120 bytes


async def test_every_attempt_is_logged_with_status_latency_error_and_excerpt(
    db: Database, clock: FakeClock
) -> None:
    calls: list[int] = []

    async def flaky(_request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            return web.Response(status=503, body=LONG_ANSWER)
        return web.Response(status=200, text="thanks")

    async with serve(flaky) as base, delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(base + "/hook", retryPolicy=BOUNDED))["callbackId"]
        rid = await flow.remote(cbid)
        first_at = clock()
        await flow.drain()
        second_at = flow.clock.advance(10)
        await flow.drain()
        [listed] = await flow.deliveries(cbid)
        detail = await flow.delivery(cbid, listed["id"])
        attempts = await flow.tenant.http.get(flow.path(cbid) + "/attempts")
    assert listed["remoteActionId"] == rid
    assert listed["sequence"] == 1
    assert listed["eventStatus"] == {"type": "Pending", "status": "Accepted"}
    assert listed["state"] == "delivered"
    assert listed["attempts"] == 2
    failed, delivered = detail["attemptLog"]
    assert failed["startedAt"] == isoformat(first_at)
    assert failed["statusCode"] == 503
    assert failed["errorClass"] == "http_503"
    assert failed["outcome"] == "failed"
    assert failed["responseExcerpt"] == LONG_ANSWER[:2048].decode()
    assert delivered["startedAt"] == isoformat(second_at)
    assert delivered["statusCode"] == 200
    assert delivered["errorClass"] is None
    assert delivered["responseExcerpt"] == "thanks"
    for attempt in (failed, delivered):
        assert isinstance(attempt["latencyMs"], int)
        assert 0 <= attempt["latencyMs"] < 2000
        assert attempt["notificationIds"] == [listed["id"]]
    assert attempts.status_code == 200
    assert attempts.json()["_embedded"]["attempts"] == detail["attemptLog"]


async def test_the_log_filters_by_state_and_remote(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback(retryPolicy=BOUNDED))["callbackId"]
        ok = await flow.remote(cbid, "Electric")
        await flow.drain()
        flow.hook.answer = lambda _n: 500
        flow.clock.advance(1)
        bad = await flow.remote(cbid, "Hybrid")
        await flow.drain()
        await flow.after(10)
        abandoned = await flow.deliveries(cbid, state="abandoned")
        of_ok = await flow.deliveries(cbid, remoteActionId=ok)
        everything = await flow.deliveries(cbid)
        wrong = await flow.tenant.http.get(
            flow.path(cbid) + "/deliveries", params={"state": "lost"}
        )
    assert [(d["remoteActionId"], d["state"]) for d in everything] == [
        (ok, "delivered"),
        (bad, "abandoned"),
    ]
    assert [d["remoteActionId"] for d in abandoned] == [bad]
    assert [d["state"] for d in of_ok] == ["delivered"]
    assert wrong.status_code == 400
    assert "state" in wrong.json()["message"]


async def test_replaying_one_notification_sends_the_same_event_again(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        [delivery] = await flow.deliveries(cbid)
        flow.clock.advance(3600)
        answer = await flow.tenant.http.post(
            f"{flow.path(cbid)}/deliveries/{delivery['id']}/replay"
        )
        replayed = answer.json()
        again = await flow.tenant.http.post(f"{flow.path(cbid)}/deliveries/{delivery['id']}/replay")
        assert await flow.drain() == 1
        [after] = await flow.deliveries(cbid)
        log = (await flow.delivery(cbid, after["id"]))["attemptLog"]
    assert answer.status_code == 202
    assert replayed["state"] == "pending"
    assert again.status_code == 409, "a pending notification is already on its way"
    assert again.json()["code"] == 40900
    first, second = flow.hook.events
    assert first == second, "the same event, with its original date, id and sequence"
    assert after["state"] == "delivered"
    assert len(log) == 2


async def test_replay_refuses_unknown_or_malformed_ids(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        missing = await flow.tenant.http.post(f"{flow.path(cbid)}/deliveries/{'a' * 32}/replay")
        malformed = await flow.tenant.http.post(f"{flow.path(cbid)}/deliveries/not*an*id/replay")
    assert missing.status_code == 404
    assert missing.json()["code"] == 40405
    assert malformed.status_code == 400
    assert malformed.json()["code"] == 40007


async def test_the_log_is_private_to_its_fleet_and_callback(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        other_cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        await flow.drain()
        [delivery] = await flow.deliveries(cbid)
        elsewhere = await flow.tenant.http.get(
            f"{flow.path(other_cbid)}/deliveries/{delivery['id']}"
        )
        bob = await make_tenant(flow.app, db, "bob", clock())
        try:
            foreign = await bob.http.get(flow.path(cbid) + "/deliveries")
            foreign_replay = await bob.http.post(
                f"{flow.path(cbid)}/deliveries/{delivery['id']}/replay"
            )
        finally:
            await bob.http.aclose()
    assert elsewhere.status_code == 404
    assert foreign.status_code == 404
    assert foreign_replay.status_code == 404
    assert len(flow.hook.requests) == 1


async def test_replay_since_resends_every_failed_notification_raised_after_it(
    db: Database, clock: FakeClock
) -> None:
    async with delivery_flow(db, clock) as flow:
        flow.hook.answer = lambda _n: 500
        cbid = (await flow.callback(retryPolicy={"policy": "None", "retryDelay": 5}))["callbackId"]
        old = await flow.remote(cbid, "Electric")
        flow.clock.advance(600)
        since = clock()
        recent = await flow.remote(cbid, "Hybrid")
        flow.clock.advance(1)
        later = await flow.remote(cbid, "Thermic")
        await flow.drain()
        await flow.after(5)
        flow.hook.answer = lambda _n: 200
        before = len(flow.hook.requests)
        answer = await flow.tenant.http.post(
            flow.path(cbid) + "/deliveries/replay", json={"since": isoformat(since)}
        )
        await flow.drain()
        states = {d["remoteActionId"]: d["state"] for d in await flow.deliveries(cbid)}
    assert answer.status_code == 202
    assert answer.json() == {"replayed": 2}
    resent = {e["remoteActionId"] for r in flow.hook.requests[before:] for e in r["json"]["events"]}
    assert resent == {recent, later}
    assert states == {old: "abandoned", recent: "delivered", later: "delivered"}


async def test_replay_since_names_the_field_it_needs(db: Database, clock: FakeClock) -> None:
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        url = flow.path(cbid) + "/deliveries/replay"
        missing = await flow.tenant.http.post(url, json={})
        naive = await flow.tenant.http.post(url, json={"since": "2026-01-01T00:00:00"})
        garbage = await flow.tenant.http.post(url, json={"since": "yesterday"})
    for answer in (missing, naive, garbage):
        assert answer.status_code == 400
        assert "since" in answer.json()["message"]


async def test_metrics_count_outcomes_latency_and_the_queue(db: Database, clock: FakeClock) -> None:
    metrics = DeliveryMetrics()
    async with delivery_flow(db, clock, metrics=metrics) as flow:
        held = (await flow.callback())["callbackId"]
        await flow.remote(held, "Thermic")
        await flow.set_status(held, "Paused")
        cbid = (await flow.callback(retryPolicy=BOUNDED))["callbackId"]
        await flow.remote(cbid, "Electric")
        await flow.drain()
        flow.hook.answer = lambda _n: 500
        await flow.remote(cbid, "Hybrid")
        await flow.drain()
        await flow.after(10)
        flow.clock.advance(32)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=flow.app), base_url="https://keyfob.test"
        ) as anonymous:
            answer = await anonymous.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    assert samples['keyfob_webhook_deliveries_total{outcome="delivered"}'] == 1
    assert samples['keyfob_webhook_deliveries_total{outcome="failed"}'] == 2
    assert samples['keyfob_webhook_deliveries_total{outcome="abandoned"}'] == 1
    assert samples['keyfob_webhook_deliveries_total{outcome="expired"}'] == 0
    assert samples["keyfob_webhook_attempt_seconds_count"] == 3
    assert samples["keyfob_webhook_queue_depth"] == 1, "the Paused callback's notification"
    assert samples["keyfob_webhook_oldest_due_age_seconds"] == 42


async def test_metrics_count_notifications_that_expire_unsent(
    db: Database, clock: FakeClock
) -> None:
    metrics = DeliveryMetrics()
    async with delivery_flow(db, clock, metrics=metrics) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        await flow.set_status(cbid, "Paused")
        await flow.after(72 * 3600 + 1)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=flow.app), base_url="https://keyfob.test"
        ) as anonymous:
            samples = _samples((await anonymous.get("/metrics")).text)
    assert samples['keyfob_webhook_deliveries_total{outcome="expired"}'] == 1
    assert samples["keyfob_webhook_queue_depth"] == 0


def _samples(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found
