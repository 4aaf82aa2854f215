"""Event streams: one API process holding 1,000 SSE subscribers, memory and fan-out delay.

This process is the server: ``create_app`` (API only, SQLite file or ``--db``) under uvicorn,
with ``--callbacks`` fleet callbacks. A child process opens ``--subscribers`` SSE connections
spread evenly over the callbacks (10 each by default) and reads them all. Once every one is
connected, this process writes notifications into the outbox at ``--rate`` per second for
``--seconds`` (one short transaction every 20 ms, then the in-process wake the dispatcher
gives), each to a callback in turn, as the dispatcher would record them.

Measured: this process's resident memory before any subscriber, with all of them connected,
and its peak while events flow (the extra memory is peak minus before); the fan-out delay of
every delivered item, from its notification id's creation time (milliseconds, before the
commit) to the child reading it; and whether every subscriber got every item of its callback.
Targets: at most 200 MiB extra, p99 delay at most 100 ms at 300 events/s. No baseline: these
are absolute targets.

    python bench/streams.py                       # 1,000 subscribers, 300 events/s for 20 s
    python bench/streams.py --quick               # 200 subscribers, 5 s
    python bench/streams.py --db postgresql://...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from common import LOOPBACK, free_port, machine, percentile, run_async
from sqlalchemy import Text, cast, select

from keyfob.api.app import create_app
from keyfob.api.streams import Server
from keyfob.config import Settings
from keyfob.kit.ids import new_ordered_id
from keyfob.notifications.models import notifications

MIB = 1024 * 1024


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# -- the child: many SSE subscribers --------------------------------------------------------


async def _subscribe(
    session: aiohttp.ClientSession, url: str, got: list[int], delays: list[float], ready: Any
) -> None:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        ready()
        async for raw in response.content:
            if raw.startswith(b"id: "):
                made = int(raw[4:16], 16) / 1000
                delays.append(time.time() - made)
                got[0] += 1


async def client_main(base: str, paths: list[str], auth: str) -> None:
    delays: list[float] = []
    counts = [[0] for _ in paths]
    connected = 0
    all_ready = asyncio.Event()

    def ready() -> None:
        nonlocal connected
        connected += 1
        if connected == len(paths):
            all_ready.set()

    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": auth}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
        tasks = []
        for index, path in enumerate(paths):
            tasks.append(
                asyncio.create_task(_subscribe(s, base + path, counts[index], delays, ready))
            )
            if index % 50 == 49:
                await asyncio.sleep(0.05)  # do not open a thousand sockets in one burst
        await all_ready.wait()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays_ms = [d * 1000 for d in delays]
    print(
        json.dumps(
            {
                "items": len(delays),
                "per_subscriber": [c[0] for c in counts],
                "p50_ms": percentile(delays_ms, 50),
                "p99_ms": percentile(delays_ms, 99),
                "max_ms": max(delays_ms, default=0.0),
            }
        ),
        flush=True,
    )


# -- this process: the server and the writer ------------------------------------------------


async def _setup(app: Any, callbacks: int) -> tuple[str, str, list[str], list[dict[str, Any]]]:
    """A partner, a fleet with one car, the callbacks, and one remote (and row) per callback."""
    from keyfob.auth.service import create_partner
    from keyfob.vehicles.capabilities import capabilities_for
    from keyfob.vehicles.service import create_fleet, create_vehicle
    from keyfob.vocabulary import Motorization

    ctx = app.state.ctx
    now = ctx.clock()
    async with ctx.database.transaction() as conn:
        partner = await create_partner(conn, login="bench", password="bench-pw", name="b", now=now)
        fleet = await create_fleet(conn, partner_id=partner.id, name="bench", now=now)
        vehicle = await create_vehicle(
            conn,
            fleet_id=fleet.id,
            vin="VF3BENCH000000001",
            motorization=Motorization.ELECTRIC.value,
            capabilities=capabilities_for(Motorization.ELECTRIC),
            now=now,
        )
    auth = "Basic " + base64.b64encode(b"bench:bench-pw").decode()
    query = f"?client_id={partner.client_id}"
    base = f"/connectedcar/v3/fleets/{fleet.id}"
    transport = aiohttp.TCPConnector(limit=0)
    ids, templates = [], []
    async with aiohttp.ClientSession(
        base_url=app.state.url, connector=transport, headers={"Authorization": auth}
    ) as http:
        for _ in range(callbacks):
            body = {
                "callback": {"webhook": {"target": "https://hooks.example.com/b", "name": "b"}},
                "remoteTypes": ["Horn"],
            }
            async with http.post(f"{base}/remote/callbacks{query}", json=body) as answer:
                callback_id = (await answer.json())["callbackId"]
            remotes = f"{base}/vehicles/{vehicle.id}/callbacks/{callback_id}/remotes{query}"
            async with http.post(remotes, json={"horn": {"state": "Activated"}}) as answer:
                assert answer.status == 202, await answer.text()
            ids.append(callback_id)
    async with ctx.database.read() as conn:
        for callback_id in ids:
            row = (
                await conn.execute(
                    select(
                        notifications.c.remote_id,
                        notifications.c.event_id,
                        cast(notifications.c.event, Text),
                        notifications.c.raised_at,
                    ).where(notifications.c.callback_id == callback_id)
                )
            ).one()
            templates.append(
                {
                    "callback_id": callback_id,
                    "remote_id": row[0],
                    "event_id": row[1],
                    "event": json.loads(row[2]),
                    "raised_at": row[3],
                }
            )
    paths = [f"{base}/remote/callbacks/{i}/events/stream{query}" for i in ids]
    return auth, query, paths, templates


async def _write(
    app: Any, templates: list[dict[str, Any]], rate: int, seconds: float
) -> dict[str, int]:
    """Rows written per callback."""
    ctx = app.state.ctx
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    turn = itertools.cycle(templates)
    loop = asyncio.get_running_loop()
    start = loop.time()
    written = 0
    per_callback = {t["callback_id"]: 0 for t in templates}
    while loop.time() - start < seconds:
        rows = []
        now = ctx.clock()
        for _ in range(per_tick):
            t = next(turn)
            per_callback[t["callback_id"]] += 1
            rows.append(
                {
                    "id": new_ordered_id(),
                    "callback_id": t["callback_id"],
                    "remote_id": t["remote_id"],
                    "event_id": t["event_id"],
                    "seq": 1,
                    "event": t["event"],
                    "context": None,
                    "state": "delivered",
                    "attempts": 1,
                    "raised_at": t["raised_at"],
                    "due_at": now,
                    "finished_at": now,
                }
            )
        async with ctx.database.transaction() as conn:
            await conn.execute(notifications.insert(), rows)
        ctx.wake_delivery()
        written += len(rows)
        target = start + (written / per_tick) * tick
        await asyncio.sleep(max(0.0, target - loop.time()))
    return per_callback


async def server_main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="keyfob-bench-streams-"))
    db = args.db or f"sqlite:///{workdir / 'bench.db'}"
    settings = Settings(
        db=db,
        vehicles=0,
        credentials_file=workdir / "credentials.json",
        run_dispatcher=False,
        run_worker=False,
        run_simulator=False,
        rate_limit={"day": 10**12, "burst": 10**9},
    )
    app = create_app(settings, roles=(), announce=lambda _: None)
    port = free_port()
    app.state.url = f"http://{LOOPBACK}:{port}"
    config = uvicorn.Config(
        app, host=LOOPBACK, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    auth, _query, paths, templates = await _setup(app, args.callbacks)
    per_callback = args.subscribers // args.callbacks
    subscribed = [p for p in paths for _ in range(per_callback)]
    before = rss()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        app.state.url,
        auth,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write((json.dumps(subscribed) + "\n").encode())
    await child.stdin.drain()
    line = await asyncio.wait_for(child.stdout.readline(), 120)
    assert line.strip() == b"ready", line
    connected = rss()
    peak = connected

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss())
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    per_callback = await _write(app, templates, args.rate, args.seconds)
    written = sum(per_callback.values())
    await asyncio.sleep(2.0)  # the last items reach the child
    sampler.cancel()
    child.stdin.write(b"stop\n")
    await child.stdin.drain()
    result = json.loads((await asyncio.wait_for(child.stdout.readline(), 60)).decode())
    await child.wait()
    server.should_exit = True
    await serving
    counts = result.pop("per_subscriber")
    expected = [per_callback[p.split("/callbacks/")[1].split("/")[0]] for p in subscribed]
    return {
        "machine": machine(),
        "database": "postgresql" if db.startswith("postgresql") else "sqlite",
        "subscribers": len(subscribed),
        "callbacks": args.callbacks,
        "rate_per_s": args.rate,
        "rate_achieved_per_s": round(written / args.seconds),
        "seconds": args.seconds,
        "written": written,
        "delivered": result["items"],
        "every_subscriber_got_all": counts == expected,
        "per_subscriber_min_max": [min(counts), max(counts)],
        "rss_before_mib": round(before / MIB, 1),
        "rss_connected_mib": round(connected / MIB, 1),
        "rss_peak_mib": round(peak / MIB, 1),
        "extra_mib": round((peak - before) / MIB, 1),
        "p50_ms": round(result["p50_ms"], 1),
        "p99_ms": round(result["p99_ms"], 1),
        "max_ms": round(result["max_ms"], 1),
        "targets": {"extra_mib": 200, "p99_ms": 100},
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        base, auth = sys.argv[2], sys.argv[3]
        paths = json.loads(sys.stdin.readline())
        run_async(client_main(base, paths, auth))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--callbacks", type=int, default=100)
    parser.add_argument("--rate", type=int, default=300, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.callbacks, args.seconds = 200, 20, 5.0
    os.environ.pop("KEYFOB_DB", None)
    print(json.dumps(run_async(server_main(args)), indent=2))


if __name__ == "__main__":
    main()
