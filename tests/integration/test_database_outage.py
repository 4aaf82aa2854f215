"""A database that is unreachable: requests answer 503 with Retry-After within the time-outs
(not a 500 per request, not a hang), the outage is logged once when it starts and once when it
ends, ``/ready`` follows it and ``/health`` does not.

PostgreSQL is reached through a ``FaultProxy`` the test switches to reset or black-hole; SQLite
is made unreachable by another process holding its write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sqlite3
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from conftest import create_callback, make_settings, make_tenant
from faultproxy import FaultProxy, Mode
from keyfob.api.app import create_app
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.store import migrate
from keyfob.store.engine import Database, Timeouts

HORN = {"horn": {"state": "Activated"}}
FAST = Timeouts(connect=1.0, statement=1.0, pool=1.0, busy=0.3)
LIMIT_S = 6.0
"""A request during the outage is answered well within this (without time-outs: never)."""


@contextlib.asynccontextmanager
async def serving(database: Database, clock: FakeClock) -> AsyncIterator[Any]:
    settings = make_settings(database.url, rate_limit={"day": 10**9, "burst": 10**9})
    app = create_app(settings, database=database, clock=clock, announce=lambda _: None)
    async with app.router.lifespan_context(app):
        yield app


async def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = await asyncio.wait_for(call, LIMIT_S * 2)
    return answer, time.monotonic() - started


def assert_unavailable(answer: httpx.Response, elapsed: float) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == ErrorCode.UNAVAILABLE.code
    assert answer.headers["Retry-After"] == "3"
    assert elapsed < LIMIT_S


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records]
    started = sum("database unreachable" in m for m in messages)
    ended = sum("database reachable again" in m for m in messages)
    return started, ended


async def eventually_ready(http: httpx.AsyncClient) -> None:
    for _ in range(40):
        if (await http.get("/ready")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("/ready never came back to 200")


@pytest.fixture
async def proxied(pg: Database) -> AsyncIterator[tuple[FaultProxy, Database]]:
    """The (emptied) PostgreSQL database behind a switchable proxy, with time-outs of a second."""
    target = make_url(pg.url)
    proxy = await FaultProxy(target.host or "127.0.0.1", target.port or 5432).start()
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    database = Database(url, pool_size=2, timeouts=FAST, retry_after_s=3)
    yield proxy, database
    proxy.set("pass")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(database.dispose(), 5)
    await proxy.close()
    # A connection attempt the connect time-out cancelled can leave its socket to the garbage
    # collector (the driver's, not keyfob's): collect it here rather than in a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.mark.parametrize("mode", ["reset", "blackhole"])
async def test_postgresql_unreachable_is_a_503_logged_once_and_ready_follows(
    proxied: tuple[FaultProxy, Database],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    mode: Mode,
) -> None:
    proxy, database = proxied
    async with serving(database, clock) as app:
        tenant = await make_tenant(app, database, "olga", clock())
        async with tenant.http as http:
            callback = await create_callback(tenant)
            url = f"{tenant.fleet}/vehicles/{tenant.vehicles['Electric'].id}/callbacks/{callback}"
            assert (await http.post(f"{url}/remotes", json=HORN)).status_code == 202
            assert (await http.get("/ready")).status_code == 200
            caplog.clear()

            proxy.set(mode)
            for call in (
                http.post(f"{url}/remotes", json=HORN),  # the acceptor's group commit
                http.get(f"{tenant.fleet}/remote/callbacks"),  # a plain read through a route
                http.post(f"{url}/remotes", json=HORN),
                http.get("/ready"),
            ):
                assert_unavailable(*await timed(call))
            assert (await http.get("/health")).status_code == 200, "liveness ignores the database"
            assert outage_lines(caplog) == (1, 0)
            tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
            assert not tracebacks, "no traceback per request"

            proxy.set("pass")
            await eventually_ready(http)
            assert (await http.post(f"{url}/remotes", json=HORN)).status_code == 202
            assert outage_lines(caplog) == (1, 1)


async def test_sqlite_locked_by_another_process_is_a_503_within_the_busy_timeout(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}", timeouts=FAST, retry_after_s=3)
    await migrate.upgrade(database)
    try:
        async with serving(database, clock) as app:
            tenant = await make_tenant(app, database, "olga", clock())
            async with tenant.http as http:
                callback = await create_callback(tenant)
                vehicle = tenant.vehicles["Electric"].id
                url = f"{tenant.fleet}/vehicles/{vehicle}/callbacks/{callback}/remotes"
                caplog.clear()
                other = sqlite3.connect(path, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
                try:
                    assert_unavailable(*await timed(http.post(url, json=HORN)))
                finally:
                    other.execute("ROLLBACK")
                    other.close()
                assert (await http.post(url, json=HORN)).status_code == 202
                assert outage_lines(caplog) == (1, 1)
    finally:
        await database.dispose()


async def test_ready_only_between_start_and_stop(tmp_path: Path, clock: FakeClock) -> None:
    database = Database(f"sqlite:///{tmp_path / 'ready.db'}")
    await migrate.upgrade(database)
    settings = make_settings(database.url)
    app = create_app(settings, database=database, clock=clock, announce=lambda _: None)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://keyfob.test") as http:
            starting = await http.get("/ready")
            assert starting.status_code == 503
            assert starting.json()["code"] == ErrorCode.UNAVAILABLE.code
            async with app.router.lifespan_context(app):
                assert (await http.get("/ready")).json() == {"status": "ready"}
                assert (await http.get("/health")).json() == {"status": "ok"}
            assert (await http.get("/ready")).status_code == 503
    finally:
        await database.dispose()


async def test_a_transaction_cut_off_by_a_black_hole_gives_its_locks_back(
    proxied: tuple[FaultProxy, Database], pg: Database
) -> None:
    """A unit of work whose link goes silent mid-transaction (its COMMIT never arrives) must
    not hold its row locks on the server for good: a remote claimed by it would be skipped by
    every dispatcher's ``SKIP LOCKED`` for ever, and a result for it would wait on the lock."""
    proxy, database = proxied
    lock = text("SELECT pg_advisory_xact_lock(1717)")
    cut_off = await database.engine.connect()
    await cut_off.execute(lock)  # held until that transaction ends
    proxy.set("blackhole")
    taken = False
    try:
        async with asyncio.timeout(LIMIT_S * 2):
            while not taken:
                async with pg.transaction() as conn:
                    probe = text("SELECT pg_try_advisory_xact_lock(1717)")
                    taken = bool((await conn.execute(probe)).scalar_one())
                await asyncio.sleep(0.2)
    except TimeoutError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cut_off.close(), 3)
    assert taken, "the server kept the silent client's transaction and its lock"
