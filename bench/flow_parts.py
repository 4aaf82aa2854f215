"""Pieces of ``remote_flow.py`` that are not the run itself: the scratch database, the tenant,
and an open-loop load generator.

The shared generator in ``common.py`` keeps a fixed number of requests in flight, which is how
to find the highest rate a server sustains. A fixed-rate latency figure needs the opposite:
requests leave on a schedule whatever the server does (as remotes from many clients would),
so a slow answer cannot hold the next request back and hide its own cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from common import percentile, run_async

from keyfob.auth.service import create_partner
from keyfob.kit.clock import utcnow
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_fleet, create_vehicle
from keyfob.vocabulary import Motorization

PASSWORD = "bench-flow-password"


@contextmanager
def scratch_database(server: str | None, work: Path, *, migrate: bool = True) -> Iterator[str]:
    """The URL of a new, migrated database: a SQLite file in ``work``, or a database created
    on the PostgreSQL ``server`` and dropped afterwards. ``migrate=False`` leaves a PostgreSQL
    database empty, for a ``keyfob serve`` that migrates it with its own code."""
    if server is None:
        url = f"sqlite:///{work / 'flow.db'}"
        run_async(_migrate(url))
        yield url
        return
    name = f"keyfob_flow_{os.getpid()}"
    run_async(_admin(server, f'CREATE DATABASE "{name}"'))
    url = f"{server.rsplit('/', 1)[0]}/{name}"
    try:
        if migrate:
            run_async(_migrate(url))
        yield url
    finally:
        run_async(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server: str, sql: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


async def provision(url: str, cars: int) -> dict[str, Any]:
    """One partner and fleet with ``cars`` thermic cars; what the other processes need."""
    database = Database(url)
    now = utcnow()
    try:
        async with database.transaction() as conn:
            partner = await create_partner(
                conn, login="bench", password=PASSWORD, name="bench", now=now
            )
            fleet = await create_fleet(conn, partner_id=partner.id, name="bench", now=now)
            vehicles = []
            for index in range(cars):
                vehicle = await create_vehicle(
                    conn,
                    fleet_id=fleet.id,
                    vin=f"VF3FLOW{index:010d}",
                    motorization=Motorization.THERMIC.value,
                    capabilities=capabilities_for(Motorization.THERMIC),
                    now=now,
                )
                vehicles.append((vehicle.id, vehicle.vin))
    finally:
        await database.dispose()
    return {
        "login": "bench",
        "password": PASSWORD,
        "client_id": partner.client_id,
        "fleet_id": fleet.id,
        "vehicles": vehicles,
    }


@dataclass
class PacedPlan:
    """Requests (url, body) sent in turn at ``rate`` per second for ``duration_s``."""

    requests: list[tuple[str, str]]
    headers: dict[str, str]
    rate: float
    duration_s: float
    max_in_flight: int = 2_000

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> PacedPlan:
        return cls(**json.loads(text))


async def paced(plan: PacedPlan) -> dict[str, Any]:
    """Send on schedule; a request due while ``max_in_flight`` are open is counted as skipped."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=plan.max_in_flight)
    timeout = aiohttp.ClientTimeout(total=60)
    in_flight = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(url: str, body: str) -> None:
            nonlocal in_flight
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=plan.headers) as answer:
                    await answer.read()
                    outcomes[str(answer.status)] += 1
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                outcomes[type(error).__name__] += 1
            latencies.append((time.perf_counter() - started) * 1000)
            in_flight -= 1

        total = int(plan.rate * plan.duration_s)
        tasks = []
        start = time.perf_counter()
        for index in range(total):
            delay = start + index / plan.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= plan.max_in_flight:
                outcomes["skipped"] += 1
                continue
            in_flight += 1
            url, body = plan.requests[index % len(plan.requests)]
            tasks.append(asyncio.create_task(one(url, body)))
        sent_in = time.perf_counter() - start
        await asyncio.gather(*tasks)
    return {
        "sent": len(tasks),
        "send_rate": len(tasks) / sent_in,
        "outcomes": dict(outcomes),
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
    }
