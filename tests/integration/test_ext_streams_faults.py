"""The event streams under trouble: the server restarts mid-stream, a consumer stops reading.

Real servers on a loopback port, real sockets, both engines. A restart is the first app shut
down (its streams end) and a second one started on the same port and database; a consumer that
resumes with ``Last-Event-ID`` gets everything it missed. A consumer that stops reading is cut
off with the last id it was sent, resumes from there, and has lost nothing; a consumer of the
same callback that keeps reading is not held back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from typing import Any

from conftest import make_tenant
from keyfob.kit.clock import FakeClock
from keyfob.notifications.broadcast import Broadcaster, StreamOptions
from keyfob.store.engine import Database
from stream_support import Partner, loopback, make_app, partner_over, serving, sse


def remote_ids(events: list[Any]) -> list[str]:
    return [e.json()["events"][0]["remoteActionId"] for e in events]


async def test_a_server_restart_during_a_stream_loses_nothing(
    db: Database, clock: FakeClock
) -> None:
    sock = loopback()
    port = sock.getsockname()[1]
    sock.close()
    first_app = make_app(db, clock)
    server = contextlib.AsyncExitStack()
    try:
        url = await server.enter_async_context(serving(first_app, port))
        tenant = await make_tenant(first_app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            alice = Partner(tenant, http)
            callback_id = await alice.callback()
            events = alice.events(callback_id, "/stream")
            async with sse(http, events) as stream:
                before = [await alice.remote(callback_id) for _ in range(2)]
                seen = await stream.take(2)
                await server.aclose()  # the server stops: its open streams end
                assert await stream.next() is None
    finally:
        await server.aclose()
    second_app = make_app(db, clock)
    async with serving(second_app, port) as url, partner_over(url, tenant) as http:
        alice = Partner(tenant, http)
        meanwhile = [await alice.remote(callback_id) for _ in range(3)]
        async with sse(http, events, last_event_id=seen[-1].id) as stream:
            missed = await stream.take(3)
    assert remote_ids(seen) == before
    assert remote_ids(missed) == meanwhile


WIDE = [{"type": "Body", "key": f"pad{i}", "value": "x" * 4000} for i in range(16)]
"""Body attributes that make each notification about 64 KiB, so a few fill socket buffers."""


async def _open_without_reading(url: str, path: str, partner: Partner) -> socket.socket:
    """A GET of the stream on a socket with a tiny receive buffer, never read after the head."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    tenant = partner.tenant
    basic = base64.b64encode(f"{tenant.login}:{tenant.password}".encode()).decode()
    request = (
        f"GET {path}?client_id={tenant.client_id} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Basic {basic}\r\nConnection: close\r\n\r\n"
    )
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def _read_to_end(sock: socket.socket) -> bytes:
    loop, chunks = asyncio.get_running_loop(), []
    async with asyncio.timeout(30):
        while chunk := await loop.sock_recv(sock, 1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def _sse_of_chunked(raw: bytes) -> list[tuple[str | None, str, str]]:
    """(id, event, data) of each event in an HTTP/1.1 chunked response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    payload = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        payload += rest[:size]
        body = rest[size + 2 :]
    found = []
    for block in payload.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            found.append((fields.get("id"), fields.get("event", "message"), fields["data"]))
    return found


async def test_a_consumer_that_stops_reading_is_cut_off_and_resumes(
    db: Database, clock: FakeClock
) -> None:
    app = make_app(db, clock, StreamOptions(limit=4))
    hub: Broadcaster = app.state.streams
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        async with partner_over(url, tenant) as http:
            alice = Partner(tenant, http)
            callback_id = await alice.callback(WIDE)
            path = alice.events(callback_id, "/stream")
            async with sse(http, path) as fast:
                slow = await _open_without_reading(url, path, alice)
                try:
                    posted: list[str] = []
                    kept: list[Any] = []
                    while hub.subscribers < 2:  # the slow one's feed has started
                        await asyncio.sleep(0.01)
                    while hub.subscribers == 2 and len(posted) < 300:
                        posted.append(await alice.remote(callback_id))
                        kept += await fast.take(1)  # the reading consumer keeps up
                    assert hub.subscribers == 1, "the consumer that stopped reading is cut off"
                    events = _sse_of_chunked(await _read_to_end(slow))
                finally:
                    slow.close()
                posted += [await alice.remote(callback_id) for _ in range(2)]
                kept += await fast.take(2)
            *sent, (_, kind, data) = events
            last = json.loads(data)["lastEventId"]
            async with sse(http, path, last_event_id=last) as stream:
                rest = await stream.take(len(posted) - len(sent))
    assert remote_ids(kept) == posted  # the reading one lost nothing, was not cut
    assert kind == "cutoff"
    assert [event for _, event, _ in sent] == ["notification"] * len(sent)
    assert len(sent) < len(posted) - 2
    if sent:
        assert last == sent[-1][0]
    got = [json.loads(d)["events"][0]["remoteActionId"] for _, _, d in sent]
    assert got + remote_ids(rest) == posted
