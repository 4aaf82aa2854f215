"""A remote's whole life on a stream, beside its webhook: API → dispatcher → simulated car.

The server runs the dispatcher and the delivery worker (``serve``'s roles, the in-memory link,
a simulated car). A consumer on the callback's SSE stream gets every event the dispatcher
records, Accepted to Done, as the webhook does, and the webhook still gets them all: the
stream reads the outbox beside delivery and holds nothing back. Both engines.
"""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import make_settings, make_tenant
from delivery_support import receiver
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import Database
from stream_support import Partner, partner_over, serving, sse

SETTINGS: dict[str, Any] = {
    "sim_speed": 0.0,
    "vehicles": 0,
    "delivery": {"allow_private_webhooks": True},
}


def _app(db: Database, roles: list[Any]) -> Any:
    settings = make_settings(db.url, **SETTINGS)
    return create_app(settings, database=db, clock=utcnow, roles=roles, announce=lambda _: None)


async def test_every_recorded_event_reaches_the_stream_and_the_webhook(db: Database) -> None:
    first = _app(db, [])
    async with first.router.lifespan_context(first):  # the cars are read when the roles start
        tenant = await make_tenant(first, db, "alice", utcnow())
    await tenant.http.aclose()
    app = _app(db, [vehicle_role, delivery_role])
    async with serving(app) as url, receiver() as hook, partner_over(url, tenant) as http:
        alice = Partner(tenant, http)
        body = {
            "callback": {"webhook": {"target": hook.url, "name": "h"}},
            "remoteTypes": ["Doors"],
        }
        created = await http.post(f"{tenant.fleet}/remote/callbacks", json=body)
        callback_id = created.json()["callbackId"]
        async with sse(http, alice.events(callback_id, "/stream")) as stream:
            remote_id = await alice.remote(callback_id)
            streamed = []
            while not streamed or streamed[-1]["eventStatus"]["type"] != "Done":
                event = await stream.next()
                assert event is not None
                streamed.append(event.json()["events"][0])
        async with asyncio.timeout(10):
            while len(hook.statuses_of(remote_id)) < len(streamed):
                await asyncio.sleep(0.02)
    statuses = [e["eventStatus"]["status"] for e in streamed]
    assert statuses[0] == "Accepted"
    assert "SentToVehicle" in statuses
    assert streamed[-1]["eventStatus"]["type"] == "Done"
    assert [e["sequence"] for e in streamed] == list(range(1, len(streamed) + 1))
    assert hook.statuses_of(remote_id) == statuses
    assert {e["remoteActionId"] for e in streamed} == {remote_id}
