"""User-face events per second over a WebSocket callback, beside a webhook callback, same run.

One process, one SQLite file: a user callback of each kind, each pre-filled with N pending
``Message`` notifications (one Horn remote and event each), then ``DeliveryWorker.run()`` until
every row is delivered. Receivers are local and minimal in the same process (an aiohttp
handler answering 200, a ``websockets`` server reading frames), so both channels pay the same
machine; the rounds alternate and the ratio WebSocket/webhook is what carries over. Pre-filling
is not timed. A backlog is sent in arrays of up to 100 (decision 30) on both channels.

    python bench/ws_channel.py            # 2 rounds of 3,000 events per channel
    python bench/ws_channel.py --events 1000 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time

from aiohttp import web
from common import LOOPBACK, machine, median, ratio, run_async
from delivery import PRIVATE_OK, prefill, stage, states
from sqlalchemy import update
from websockets.asyncio.server import ServerConnection, serve

from keyfob.auth.clients import create_client
from keyfob.auth.users import create_user
from keyfob.callbacks.models import callbacks
from keyfob.callbacks.user_schemas import parse_user_callback_body
from keyfob.callbacks.user_service import Owner, create_user_callback
from keyfob.kit.clock import utcnow
from keyfob.notifications.models import notifications
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.store import migrate
from keyfob.store.engine import Database

MARKER = b'"remoteActionId"'


class Count:
    def __init__(self, events: int) -> None:
        self.events, self.seen, self.done = events, 0, asyncio.Event()

    def add(self, data: bytes | str) -> None:
        self.seen += (data.encode() if isinstance(data, str) else data).count(MARKER)
        if self.seen >= self.events:
            self.done.set()


async def user_callback(database: Database, target: str, channel: str) -> str:
    """A Running user callback, owned by a real user and client, to ``target``."""
    now = utcnow()
    body = {"callback": {"websocket": {"target": target}}}
    if channel == "webhook":
        body = {"callback": {"webhook": {"target": target, "name": "bench"}}}
    parsed = parse_user_callback_body(body, target_policy=PRIVATE_OK)
    async with database.transaction() as conn:
        user = await create_user(
            conn, login=f"{channel}@bench.example.com", password="bench-pw-1", now=now
        )
        client = await create_client(
            conn,
            name=channel,
            redirect_uris=["https://b/cb"],
            scopes=[],
            realm="clientsB2CPeugeot",
            now=now,
        )
        owner = Owner(client.client.client_id, user.id)
        callback, _ = await create_user_callback(conn, owner=owner, parsed=parsed, now=now)
    return callback.id


async def one_round(channel: str, events: int) -> float:
    """Events per second delivered on ``channel`` ("webhook" or "websocket")."""
    count = Count(events)

    async def hook(request: web.Request) -> web.Response:
        count.add(await request.read())
        return web.Response(text="ok")

    async def feed(connection: ServerConnection) -> None:
        async for frame in connection:
            count.add(frame)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="keyfob-bench-ws-") as tmp:
        database = Database(f"sqlite:///{tmp}/ws.db")
        await migrate.upgrade(database)
        async with serve(feed, LOOPBACK, 0, compression=None, max_queue=None) as server:
            ws_port = next(iter(server.sockets)).getsockname()[1]
            target = (
                f"http://{LOOPBACK}:{http_port}/hook"
                if channel == "webhook"
                else f"ws://{LOOPBACK}:{ws_port}/feed"
            )
            vehicle, fleet_callback = await stage(database, target.replace("ws:", "http:"), None)
            cbid = await user_callback(database, target, channel)
            await prefill(database, vehicle, fleet_callback, events)
            async with database.transaction() as conn:  # the remotes' events go to the user one
                await conn.execute(update(notifications).values(callback_id=cbid))
                await conn.execute(
                    update(callbacks)
                    .where(callbacks.c.id == fleet_callback.id)
                    .values(status="Paused")
                )
            sender = WebhookSender(PRIVATE_OK)
            socket = WebSocketChannel(PRIVATE_OK)
            worker = DeliveryWorker(database, sender, clock=utcnow, websocket=socket)
            started = time.perf_counter()
            running = asyncio.create_task(worker.run())
            await asyncio.wait_for(count.done.wait(), 120)
            elapsed = time.perf_counter() - started
            worker.stop()
            await running
            await sender.close()
            await socket.close()
            found = await states(database)
        await database.dispose()
    await runner.cleanup()
    if found != {"delivered": events}:
        raise SystemExit(f"{channel}: notification states {found}")
    return events / elapsed


async def run(events: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {"webhook": [], "websocket": []}
    for number in range(1, rounds + 1):
        for channel in rates:
            rate = await one_round(channel, events)
            rates[channel].append(rate)
            print(f"round {number} {channel:<9} {rate:8.0f} events/s", flush=True)
    hook, socket = median(rates["webhook"]), median(rates["websocket"])
    verdict = "met" if socket >= hook else "NOT met"
    print(f"medians: webhook {hook:.0f} events/s, websocket {socket:.0f} events/s")
    print(f"ratio websocket/webhook: {ratio(socket, hook):.2f} (target >= 1: {verdict})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3_000, help="events per round [3000]")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per channel [2]")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; SQLite; {args.events} events per round")
    run_async(run(args.events, args.rounds))


if __name__ == "__main__":
    main(sys.argv[1:])
