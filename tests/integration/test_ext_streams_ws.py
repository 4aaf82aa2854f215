"""The event streams over WebSocket (an extension), on both faces, through a real server.

Each text frame is ``{"id", "data"}``, ``data`` being what the callback's webhook would get;
``?after=<id>`` resumes. A refused upgrade is answered with the face's HTTP error instead.
Both engines.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import make_tenant
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database
from oracle_schemas import assert_conforms
from stream_support import Partner, loopback, make_app, partner_over, serving
from user_support import make_user

V4 = "/connectedcar/v4"


def ws_url(base: str, path: str, **query: str) -> str:
    return f"{base.replace('http://', 'ws://')}{path}?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )


def basic(partner: Partner) -> dict[str, str]:
    pair = httpx.BasicAuth(partner.tenant.login, partner.tenant.password)
    request = next(pair.auth_flow(httpx.Request("GET", "http://x")))
    return {"Authorization": request.headers["Authorization"]}


@contextlib.asynccontextmanager
async def fleet_ws(
    base: str, partner: Partner, callback_id: str, **query: str
) -> AsyncIterator[ClientConnection]:
    url = ws_url(
        base,
        partner.events(callback_id, "/ws"),
        client_id=partner.tenant.client_id,
        **query,
    )
    async with connect(url, additional_headers=basic(partner), open_timeout=10) as ws:
        yield ws


async def frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    found = []
    for _ in range(count):
        found.append(json.loads(await ws.recv()))
    return found


def remote_ids(found: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["events"][0]["remoteActionId"] for f in found]


@pytest.fixture
async def alice(db: Database, clock: FakeClock) -> AsyncIterator[tuple[str, Partner, Any]]:
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            yield url, Partner(tenant, http), app


async def test_frames_carry_each_notification_and_resume_after_an_id(
    alice: tuple[str, Partner, Any],
) -> None:
    url, partner, _ = alice
    callback_id = await partner.callback([{"type": "Body", "key": "car", "value": "$vin"}])
    async with fleet_ws(url, partner, callback_id) as ws:
        before = [await partner.remote(callback_id) for _ in range(2)]
        got = await frames(ws, 2)
    assert remote_ids(got) == before
    assert_conforms("b2b-webhook", "RemoteEvents", got[0]["data"])
    assert got[0]["data"]["attributes"] == [
        {"key": "car", "value": partner.tenant.vehicles["Electric"].vin}
    ]
    assert got[0]["id"] < got[1]["id"]
    meanwhile = [await partner.remote(callback_id) for _ in range(3)]
    async with fleet_ws(url, partner, callback_id, after=got[-1]["id"]) as ws:
        missed = await frames(ws, 3)
        live = await partner.remote(callback_id)
        [after] = await frames(ws, 1)
    assert remote_ids(missed) == meanwhile
    assert remote_ids([after]) == [live]


async def test_a_server_restart_closes_with_1012_and_resuming_loses_nothing(
    db: Database, clock: FakeClock
) -> None:
    sock = loopback()
    port = sock.getsockname()[1]
    sock.close()
    first = make_app(db, clock)
    server = contextlib.AsyncExitStack()
    try:
        url = await server.enter_async_context(serving(first, port))
        tenant = await make_tenant(first, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            partner = Partner(tenant, http)
            callback_id = await partner.callback()
            async with fleet_ws(url, partner, callback_id) as ws:
                await partner.remote(callback_id)
                [seen] = await frames(ws, 1)
                await server.aclose()
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
    finally:
        await server.aclose()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    async with serving(make_app(db, clock), port) as url, partner_over(url, tenant) as http:
        partner = Partner(tenant, http)
        meanwhile = [await partner.remote(callback_id) for _ in range(2)]
        async with fleet_ws(url, partner, callback_id, after=seen["id"]) as ws:
            assert remote_ids(await frames(ws, 2)) == meanwhile


async def test_a_refused_upgrade_gets_the_http_error(
    alice: tuple[str, Partner, Any], db: Database, clock: FakeClock
) -> None:
    url, partner, app = alice
    callback_id = await partner.callback()
    bob_tenant = await make_tenant(app, db, "bob", clock())
    await bob_tenant.http.aclose()
    async with partner_over(url, bob_tenant) as http:
        bob = Partner(bob_tenant, http)
        path = partner.events(callback_id, "/ws")  # alice's fleet and callback
        for headers, query, status in (
            (basic(bob), {"client_id": bob_tenant.client_id}, 404),
            ({}, {"client_id": partner.tenant.client_id}, 401),
            (basic(partner), {"client_id": partner.tenant.client_id, "after": "x"}, 400),
        ):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(url, path, **query), additional_headers=headers):
                    pass
            assert refused.value.response.status_code == status
        plain = await partner.http.get(path)
    assert plain.status_code == 400
    assert plain.json()["code"] == 40000


async def test_the_user_face_sends_messages_to_their_owner_only(
    db: Database, clock: FakeClock
) -> None:
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        vehicle = tenant.vehicles["Electric"].id
        ann = await make_user(app.state.ctx, vehicle_ids=[vehicle])
        ben = await make_user(app.state.ctx)
        async with httpx.AsyncClient(base_url=url, headers=ann.headers, params=ann.params) as http:
            body = {
                "type": ["Remote"],
                "callback": {"webhook": {"name": "app", "target": "https://app.example.com/h"}},
            }
            created = await http.post(f"{V4}/user/callbacks", json=body)
            callback_id = created.json()["callbackId"]
            path = f"{V4}/user/callbacks/{callback_id}/events/ws"
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(url, path, **ben.params), additional_headers=ben.headers):
                    pass
            assert refused.value.response.status_code == 404
            async with connect(
                ws_url(url, path, **ann.params), additional_headers=ann.headers
            ) as ws:
                remotes = f"{V4}/user/vehicles/{vehicle}/callbacks/{callback_id}/remotes"
                posted = await http.post(remotes, json={"door": {"state": "Locked"}})
                [frame] = await frames(ws, 1)
    assert_conforms("b2c-webhook", "Message", frame["data"])
    assert frame["data"]["remoteEvent"]["remoteActionId"] == posted.json()["remoteActionId"]
