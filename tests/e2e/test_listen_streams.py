"""``keyfob listen --stream URL`` and ``keyfob listen --ws``, the real command as a subprocess.

``--stream`` dials a callback's event stream on a real server (SSE on the fleet face, the
WebSocket on the user face) and prints each notification as listen prints a webhook's.
``--ws`` is the target of a WebSocket callback: keyfob's own WebSocket channel delivers to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from conftest import make_tenant
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import FakeClock
from keyfob.notifications.payload import encode
from keyfob.notifications.signing import new_secret
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.store.engine import Database
from stream_support import HOOK, Partner, loopback, make_app, partner_over, serving
from user_support import make_user

KEYFOB = str(Path(sys.executable).with_name("keyfob"))
V4 = "/connectedcar/v4"


@asynccontextmanager
async def keyfob(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        KEYFOB,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def lines(process: asyncio.subprocess.Process, count: int) -> list[str]:
    assert process.stdout is not None
    found = []
    async with asyncio.timeout(30):
        while len(found) < count:
            line = await process.stdout.readline()
            assert line, f"the command ended after {found}"
            found.append(line.decode().rstrip("\n"))
    return found


async def notification_lines(process: asyncio.subprocess.Process, count: int) -> list[str]:
    """The next ``count`` printed notifications, past any "dialling again" notice."""
    found: list[str] = []
    while len(found) < count:
        found += [line for line in await lines(process, 1) if not line.startswith("!!")]
    return found


async def test_listen_follows_a_fleet_stream_from_an_id(db: Database, clock: FakeClock) -> None:
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            alice = Partner(tenant, http)
            callback_id = await alice.callback()
            posted = [await alice.remote(callback_id) for _ in range(3)]
            first = (await http.get(alice.events(callback_id))).json()["items"][0]["id"]
            stream = f"{url}{alice.events(callback_id, '/stream')}"
            credentials = ["--login", tenant.login, "--password", tenant.password]
            args = ["--client-id", tenant.client_id, "--after", first, "--count", "3"]
            async with keyfob("listen", "--stream", stream, *credentials, *args) as listen:
                head = await lines(listen, 3)  # the banner and the two posted after ``first``
                live = await alice.remote(callback_id)
                [last] = await lines(listen, 1)
                assert await listen.wait() == 0
    assert head[0].startswith("following ")
    vin = tenant.vehicles["Electric"].vin
    for remote_id, line in zip([*posted[1:], live], [*head[1:], last], strict=True):
        assert f"{remote_id}  {vin}  Doors  Pending/Accepted" in line


async def test_listen_follows_a_user_stream_over_websocket_and_verifies_it(db: Database) -> None:
    clock = FakeClock(datetime.now(UTC))  # the command checks timestamps against its own clock
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        vehicle = tenant.vehicles["Electric"].id
        ann = await make_user(app.state.ctx, vehicle_ids=[vehicle])
        async with httpx.AsyncClient(base_url=url, headers=ann.headers, params=ann.params) as http:
            body = {
                "type": ["Remote"],
                "callback": {"webhook": {"name": "app", "target": "https://app.example.com/h"}},
            }
            created = (await http.post(f"{V4}/user/callbacks", json=body)).json()
            callback_id = created["callbackId"]
            remotes = f"{V4}/user/vehicles/{vehicle}/callbacks/{callback_id}/remotes"
            posted = await http.post(remotes, json={"door": {"state": "Locked"}})
            first = (await http.get(f"{V4}/user/callbacks/{callback_id}/events")).json()
            stream = f"{url.replace('http', 'ws')}{V4}/user/callbacks/{callback_id}/events/ws"
            args = ["--token", ann.token, "--realm", ann.headers["x-introspect-realm"]]
            args += ["--client-id", ann.client_id, "--count", "1", "--secret", created["secret"]]
            before = first["items"][0]["id"]
            async with keyfob("listen", "--stream", stream, *args, "--after", before) as listen:
                await lines(listen, 1)  # the banner
                again = await http.post(remotes, json={"door": {"state": "Unlocked"}})
                [line] = await lines(listen, 1)
                assert await listen.wait() == 0
    assert posted.status_code == again.status_code == 202
    assert f"{again.json()['remoteActionId']}  -  Doors  Pending/Accepted" in line
    assert line.endswith("  signed")


async def test_listen_dials_again_after_a_restart_and_misses_nothing(
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
            callback_id = await Partner(tenant, http).callback()
            base = f"{url}{tenant.fleet}/remote/callbacks/{callback_id}/events"
            credentials = ["--login", tenant.login, "--password", tenant.password]
            args = [*credentials, "--client-id", tenant.client_id, "--count", "3"]
            async with keyfob("listen", "--stream", f"{base}/stream", *args) as listen:
                await lines(listen, 1)  # the banner
                while first.state.streams.subscribers < 1:  # it has dialled
                    await asyncio.sleep(0.01)
                posted = [await Partner(tenant, http).remote(callback_id)]
                printed = await lines(listen, 1)
                await server.aclose()  # the stream ends under it
                second = make_app(db, clock)
                async with serving(second, port) as again, partner_over(again, tenant) as http2:
                    alice = Partner(tenant, http2)
                    posted += [await alice.remote(callback_id) for _ in range(2)]
                    printed += await notification_lines(listen, 2)
                    assert await listen.wait() == 0
    finally:
        await server.aclose()
    for remote_id, line in zip(posted, printed, strict=True):
        assert f"{remote_id}  " in line


async def test_listen_stops_on_a_refused_stream_and_a_malformed_secret(
    db: Database, clock: FakeClock
) -> None:
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            callback_id = await Partner(tenant, http).callback()
        stream = f"{url}{tenant.fleet}/remote/callbacks/{callback_id}/events/stream"
        wrong = ["--login", tenant.login, "--password", "wrong", "--client-id", tenant.client_id]
        async with keyfob("listen", "--stream", stream, *wrong) as listen:
            assert await listen.wait() == 1
            assert listen.stderr is not None
            assert "the stream refused: 401" in (await listen.stderr.read()).decode()
        async with keyfob("listen", "--stream", stream, "--secret", "whsec_x") as listen:
            assert await listen.wait() == 2
            assert listen.stderr is not None
            assert "--secret: secret must be" in (await listen.stderr.read()).decode()


async def test_listen_verifies_each_stream_event_with_the_secret(db: Database) -> None:
    clock = FakeClock(datetime.now(UTC))  # the command checks timestamps against its own clock
    app = make_app(db, clock)
    async with serving(app) as url:
        tenant = await make_tenant(app, db, "alice", clock())
        await tenant.http.aclose()
        async with partner_over(url, tenant) as http:
            alice = Partner(tenant, http)
            body = {
                "callback": {"webhook": {"target": HOOK, "name": "o"}},
                "remoteTypes": ["Doors"],
            }
            created = (await http.post(f"{tenant.fleet}/remote/callbacks", json=body)).json()
            callback_id, secret = created["callbackId"], created["secret"]
            posted = await alice.remote(callback_id)
            stream = f"{url}{alice.events(callback_id, '/stream')}"
            args = ["--login", tenant.login, "--password", tenant.password, "--after", "0" * 32]
            args += ["--client-id", tenant.client_id, "--count", "1"]
            async with keyfob("listen", "--stream", stream, *args, "--secret", secret) as good:
                good_lines = await lines(good, 2)
                assert await good.wait() == 0
            wrong = new_secret()
            async with keyfob("listen", "--stream", stream, *args, "--secret", wrong) as bad:
                bad_lines = await lines(bad, 3)
                assert await bad.wait() == 0
    assert "signatures checked" in good_lines[0]
    vin = tenant.vehicles["Electric"].vin
    assert f"{posted}  {vin}  Doors  Pending/Accepted" in good_lines[1]
    assert good_lines[1].endswith("  signed")
    assert "!! " in bad_lines[1]
    assert "signature rejected" in bad_lines[1]
    assert not bad_lines[2].endswith("signed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MESSAGE: dict[str, Any] = {
    "callbackId": "cb1",
    "attributes": [],
    "type": "Remote",
    "date": "2026-03-01T08:00:01.000Z",
    "remoteEvent": {
        "remoteActionId": "0f9a6c2e5b7d4e1f8a3b2c1d0e9f8a7b",
        "remoteType": "Doors",
        "eventStatus": {"type": "Done", "status": "Success"},
    },
}


async def test_listen_ws_prints_what_the_websocket_channel_delivers() -> None:
    port = _free_port()
    async with keyfob("listen", "--ws", "--port", str(port)) as listen:
        [banner] = await lines(listen, 1)
        assert banner.startswith(f"listening on ws://127.0.0.1:{port}/")
        channel = WebSocketChannel(TargetPolicy(allow_private=True), timeout=5)
        try:
            target = f"ws://127.0.0.1:{port}/hook"
            one = await channel.send("cb1", target, encode(MESSAGE).decode())
            second = {**MESSAGE, "remoteEvent": {**MESSAGE["remoteEvent"], "remoteType": "Horn"}}
            batch = await channel.send("cb1", target, encode([MESSAGE, second]).decode())
        finally:
            await channel.close()
        printed = await lines(listen, 4)
    assert one.delivered
    assert batch.delivered
    assert printed[0].endswith("connected: 127.0.0.1 /hook")
    remote = MESSAGE["remoteEvent"]["remoteActionId"]
    assert printed[1].endswith(f"{remote}  -  Doors  Done/Success")
    assert printed[2].endswith(f"{remote}  -  Doors  Done/Success")
    assert printed[3].endswith(f"{remote}  -  Horn  Done/Success")


async def test_listen_ws_with_a_secret_takes_a_signed_connection_and_refuses_others() -> None:
    port = _free_port()
    secret = new_secret()
    async with keyfob("listen", "--ws", "--port", str(port), "--secret", secret) as listen:
        [banner] = await lines(listen, 1)
        channel = WebSocketChannel(TargetPolicy(allow_private=True), timeout=5)
        target = f"ws://127.0.0.1:{port}/hook"
        try:
            signed = await channel.send("cb1", target, encode(MESSAGE).decode(), [secret])
        finally:
            await channel.close()
        printed = await lines(listen, 3)
        for secrets in ([], [new_secret()]):
            other = WebSocketChannel(TargetPolicy(allow_private=True), timeout=5)
            try:
                refused = await other.send("cb1", target, encode(MESSAGE).decode(), secrets)
            finally:
                await other.close()
            assert not refused.delivered
            [rejected] = await lines(listen, 1)
            assert "!! /hook: handshake signature rejected" in rejected
    assert "handshake signature checked" in banner
    assert signed.delivered
    assert printed[0].endswith("connected: 127.0.0.1 /hook")
    assert printed[1].endswith("-  Doors  Done/Success")
