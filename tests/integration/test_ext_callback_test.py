"""Callback test-send (docs/extensions.md): a marked, signed notification through the real
sender, and the receiver's answer, on both faces and both engines."""

from __future__ import annotations

import json

import httpx

from conftest import make_settings
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock
from keyfob.notifications.signing import verify
from keyfob.store.engine import Database
from user_face import V4, user_stage

FLEET_CALLBACK = {
    "label": "ops",
    "remoteTypes": ["Doors", "Horn"],
    "callback": {
        "webhook": {
            "name": "ops",
            "target": "",
            "attributes": [{"type": "Header", "key": "X-Tenant", "value": "$fleetID"}],
        }
    },
}


def fleet_callback(target: str) -> dict[str, object]:
    body = json.loads(json.dumps(FLEET_CALLBACK))
    body["callback"]["webhook"]["target"] = target
    return body


async def test_fleet_test_send_reaches_the_receiver_marked_and_signed(
    db: Database, clock: FakeClock
) -> None:
    async with user_stage(db, clock) as stage:
        tenant = stage.tenant
        created = (
            await tenant.http.post(
                f"{tenant.fleet}/remote/callbacks", json=fleet_callback(stage.hook.url)
            )
        ).json()
        cbid = created["callbackId"]
        stage.hook.answer = lambda _n: 202
        answer = await tenant.http.post(f"{tenant.fleet}/remote/callbacks/{cbid}/test")
        assert answer.status_code == 200, answer.text
        result = answer.json()
        (request,) = stage.hook.requests
        assert result["delivered"] is True
        assert result["statusCode"] == 202
        assert result["responseExcerpt"] == "ok"
        assert result["latencyMs"] >= 0
        assert result["webhookId"].startswith("msg_test_")
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["keyfob-test"] == "true"
        assert headers["x-tenant"] == tenant.fleet_id
        assert headers["webhook-id"] == result["webhookId"]
        verify(created["secret"], request["headers"], request["raw"], now=clock())
        (event,) = request["json"]["events"]
        assert request["json"]["callbackId"] == cbid
        assert event["remoteActionId"] == "0" * 32
        assert event["vin"] == "0" * 17
        assert event["remoteType"] == "Doors"
        assert event["eventId"].startswith("test_")
        # Nothing was stored: no remote, and the callback's delivery log is empty.
        for log in ("deliveries", "attempts"):
            seen = await tenant.http.get(f"{tenant.fleet}/remote/callbacks/{cbid}/{log}")
            assert seen.status_code == 200, seen.text
            assert seen.json()["total"] == 0


async def test_a_failing_receiver_is_reported_not_retried(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        tenant = stage.tenant
        created = (
            await tenant.http.post(
                f"{tenant.fleet}/remote/callbacks", json=fleet_callback(stage.hook.url)
            )
        ).json()
        stage.hook.answer = lambda _n: 500
        answer = await tenant.http.post(
            f"{tenant.fleet}/remote/callbacks/{created['callbackId']}/test"
        )
        assert answer.status_code == 200
        assert answer.json()["delivered"] is False
        assert answer.json()["statusCode"] == 500
        assert answer.json()["errorClass"] == "http_500"
        assert await stage.drain() == 0
        assert len(stage.hook.requests) == 1


async def test_the_ssrf_rules_apply_when_the_test_is_sent(db: Database, clock: FakeClock) -> None:
    """A target allowed when the callback was made, refused by the policy in force now."""
    async with user_stage(db, clock) as stage:
        tenant = stage.tenant
        created = (
            await tenant.http.post(
                f"{tenant.fleet}/remote/callbacks", json=fleet_callback(stage.hook.url)
            )
        ).json()
        strict = create_app(
            make_settings(db.url, delivery={"allow_private_webhooks": False}),
            database=db,
            clock=clock,
            announce=lambda _: None,
        )
        strict_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=strict),
            base_url="https://keyfob.test",
            auth=(tenant.login, tenant.password),
            params={"client_id": tenant.client_id},
        )
        async with strict.router.lifespan_context(strict), strict_http:
            answer = await strict_http.post(
                f"{tenant.fleet}/remote/callbacks/{created['callbackId']}/test"
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["delivered"] is False
        assert answer.json()["errorClass"] == "refused_address"
        assert answer.json()["statusCode"] is None
        assert stage.hook.requests == []


async def test_someone_elses_callback_is_not_found(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        created = await stage.callback()
        tenant = stage.tenant
        answer = await tenant.http.post(
            f"{tenant.fleet}/remote/callbacks/{created['callbackId']}/test"
        )
        assert answer.status_code == 404
        assert answer.json()["code"] == 40403
        assert stage.hook.requests == []


async def test_user_test_send_is_a_marked_message(db: Database, clock: FakeClock) -> None:
    async with user_stage(db, clock) as stage:
        created = await stage.callback()
        cbid = created["callbackId"]
        answer = await stage.http.post(f"{V4}/user/callbacks/{cbid}/test")
        assert answer.status_code == 200, answer.text
        assert answer.json()["delivered"] is True
        assert answer.json()["statusCode"] == 200
        (request,) = stage.hook.requests
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["keyfob-test"] == "true"
        verify(created["secret"], request["headers"], request["raw"], now=clock())
        message = request["json"]
        # Exactly the template's fields (decision 26): the marks travel in headers and ids.
        assert set(message) == {"callbackId", "attributes", "type", "date", "remoteEvent"}
        assert message["remoteEvent"]["remoteActionId"] == "0" * 32
        _, other_http = await stage.another_user()
        try:
            refused = await other_http.post(f"{V4}/user/callbacks/{cbid}/test")
        finally:
            await other_http.aclose()
        assert refused.status_code == 404
        assert len(stage.hook.requests) == 1
