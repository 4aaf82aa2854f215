"""Events reach a real webhook receiver in the contract's RemoteEvents shape."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Tenant, make_settings, make_tenant
from delivery_support import drain, receiver, worker
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms


@pytest.fixture
async def private_app(db: Database, clock: FakeClock) -> Any:
    application = create_app(
        make_settings(db.url, delivery={"allow_private_webhooks": True}),
        database=db,
        clock=clock,
        announce=lambda _: None,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def alice(private_app: Any, db: Database, clock: FakeClock) -> Any:
    found = await make_tenant(private_app, db, "alice", clock())
    yield found
    await found.http.aclose()


async def _callback(tenant: Tenant, target: str, **extra: Any) -> dict[str, Any]:
    body = {
        "callback": {"webhook": {"target": target, "name": "hook", **extra.pop("webhook", {})}},
        "remoteTypes": ["Doors", "Horn"],
        **extra,
    }
    answer = await tenant.http.post(f"{tenant.fleet}/remote/callbacks", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_accepted_event_is_posted(alice: Tenant, db: Database, clock: FakeClock) -> None:
    async with receiver() as hook, worker(db, clock) as work:
        created = await _callback(
            alice,
            hook.url,
            webhook={
                "attributes": [
                    {"type": "Header", "key": "X-Vehicle", "value": "$vin"},
                    {"type": "Query", "key": "kind", "value": "$remoteType"},
                    {"type": "Body", "key": "tenant", "value": "acme"},
                ]
            },
        )
        vehicle = alice.vehicles["Electric"]
        path = f"{alice.fleet}/vehicles/{vehicle.id}/callbacks/{created['callbackId']}/remotes"
        posted = await alice.http.post(path, json={"door": {"state": "Locked"}})
        assert posted.status_code == 202
        assert await drain(work) == 1
    [request] = hook.requests
    body = request["json"]
    assert_conforms("b2b-webhook", "RemoteEvents", body)
    assert body["callbackId"] == created["callbackId"]
    assert body["attributes"] == [{"key": "tenant", "value": "acme"}]
    [event] = body["events"]
    assert event["remoteActionId"] == posted.json()["remoteActionId"]
    assert event["vin"] == vehicle.vin
    assert event["eventStatus"] == {"type": "Pending", "status": "Accepted"}
    assert event["sequence"] == 1
    assert request["headers"]["X-Vehicle"] == vehicle.vin
    assert request["query"] == {"kind": "Doors"}
    assert request["headers"]["webhook-signature"].startswith("v1,")
