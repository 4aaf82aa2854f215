"""The event streams over WebSocket (an extension), on both faces, through a real server.

Each text frame is ``{"id", "data"}``, ``data`` being what the callback's webhook would get;
``?after=<id>`` resumes. A refused upgrade is answered with the face's HTTP error instead.
Both engines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import make_tenant
from keyfob.kit.clock import FakeClock
from keyfob.notifications.broadcast import Broadcaster, StreamOptions
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


WIDE = [{"type": "Body", "key": f"pad{i}", "value": "x" * 4000} for i in range(16)]
"""Body attributes that make each frame about 64 KiB, so a few fill socket buffers."""


async def _upgrade_without_reading(url: str, path: str, partner: Partner) -> socket.socket:
    """A WebSocket upgrade on a socket with a tiny receive buffer, never read after the 101."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path}?client_id={partner.tenant.client_id} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {basic(partner)['Authorization']}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def _frames_to_close(sock: socket.socket) -> tuple[list[dict[str, Any]], int, str]:
    """The text frames (JSON) the server sent, then its close code and reason."""
    loop, data = asyncio.get_running_loop(), bytearray()

    async def take(n: int) -> bytes:
        while len(data) < n:
            chunk = await loop.sock_recv(sock, 1 << 16)
            assert chunk, "the connection ended without a close frame"
            data.extend(chunk)
        found = bytes(data[:n])
        del data[:n]
        return found

    found = []
    async with asyncio.timeout(30):
        while True:
            first, second = await take(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(await take(2), "big")
            elif size == 127:
                size = int.from_bytes(await take(8), "big")
            payload = await take(size)
            if first & 0x0F == 0x8:
                return found, int.from_bytes(payload[:2], "big"), payload[2:].decode()
            if first & 0x0F == 0x1:
                found.append(json.loads(payload))


async def test_a_consumer_that_stops_reading_is_closed_1013_with_its_last_id(
    db: Database, clock: FakeClock
) -> None:
    app = make_app(db, clock, StreamOptions(limit=4))
    hub: Broadcaster = app.state.streams
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            partner = Partner(tenant, http)
            callback_id = await partner.callback(WIDE)
            sock = await _upgrade_without_reading(url, partner.events(callback_id, "/ws"), partner)
            try:
                posted: list[str] = []
                while hub.subscribers < 1:  # its feed has started
                    await asyncio.sleep(0.01)
                while hub.subscribers == 1 and len(posted) < 300:
                    posted.append(await partner.remote(callback_id))
                assert hub.subscribers == 0, "the consumer that stopped reading is cut off"
                got, code, reason = await _frames_to_close(sock)
            finally:
                sock.close()
            last = reason.rsplit("=", 1)[1]
            async with fleet_ws(url, partner, callback_id, after=last) as ws:
                rest = await frames(ws, len(posted) - len(got))
    assert code == 1013
    assert reason.startswith("too slow; resume after=")
    if got:
        assert last == got[-1]["id"]
    assert len(got) < len(posted)
    assert remote_ids(got) + remote_ids(rest) == posted
