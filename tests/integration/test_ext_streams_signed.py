"""Signed event streams: each SSE event and WebSocket frame carries its webhook's signature.

A consumer holding the callback's secret can tell keyfob's events from forgeries exactly as it
checks a webhook (``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` over the event's
``data`` bytes). Through a real server; both engines.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from conftest import make_tenant
from keyfob.kit.clock import FakeClock
from keyfob.notifications.signing import InvalidSignature, new_secret, verify
from keyfob.store.engine import Database
from stream_support import HOOK, Partner, make_app, partner_over, serving, sse


@pytest.fixture
async def alice(db: Database, clock: FakeClock) -> AsyncIterator[tuple[str, Partner]]:
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            yield url, Partner(tenant, http)


def basic(partner: Partner) -> dict[str, str]:
    pair = httpx.BasicAuth(partner.tenant.login, partner.tenant.password)
    return {
        "Authorization": next(pair.auth_flow(httpx.Request("GET", "http://x"))).headers[
            "Authorization"
        ]
    }


async def signed_callback(partner: Partner) -> tuple[str, str]:
    body: dict[str, Any] = {
        "callback": {"webhook": {"target": HOOK, "name": "ops"}},
        "remoteTypes": ["Doors"],
    }
    answer = await partner.http.post(f"{partner.tenant.fleet}/remote/callbacks", json=body)
    assert answer.status_code == 200, answer.text
    created = answer.json()
    return created["callbackId"], created["secret"]


async def test_an_sse_event_verifies_with_its_callbacks_secret_only(
    alice: tuple[str, Partner], clock: FakeClock
) -> None:
    _, partner = alice
    callback_id, secret = await signed_callback(partner)
    async with sse(partner.http, partner.events(callback_id, "/stream")) as stream:
        await partner.remote(callback_id)
        [event] = await stream.take(1)
    assert event.fields["webhook-id"] == f"msg_{event.id}"
    verify(secret, event.fields, event.data.encode(), now=clock())
    with pytest.raises(InvalidSignature):
        verify(new_secret(), event.fields, event.data.encode(), now=clock())
    with pytest.raises(InvalidSignature):
        verify(secret, event.fields, event.data.encode() + b" ", now=clock())


async def test_a_websocket_frame_carries_a_valid_signature(
    alice: tuple[str, Partner], clock: FakeClock
) -> None:
    url, partner = alice
    callback_id, secret = await signed_callback(partner)
    path = partner.events(callback_id, "/ws")
    target = f"{url.replace('http://', 'ws://')}{path}?client_id={partner.tenant.client_id}"
    async with connect(target, additional_headers=basic(partner), open_timeout=10) as ws:
        await partner.remote(callback_id)
        frame = json.loads(await ws.recv())
    data = json.dumps(frame["data"], separators=(",", ":")).encode()
    verify(secret, frame["signature"], data, now=clock())
    with pytest.raises(InvalidSignature):
        verify(new_secret(), frame["signature"], data, now=clock())
