"""Dispatchers in other processes hear of new remotes at once (PostgreSQL NOTIFY/LISTEN).

What listening holds, too: one session per process, and none in an API nobody streams. On
PostgreSQL every NOTIFY wakes every listening session of the database, whatever its channel,
and each woken session runs a transaction to read the queue; on SQLite each listener is a socket
that every nudge of its channel reaches. What a user would notice if this broke: the server's
transactions multiplied by the sessions held, and connections of the pool taken for nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import create_callback, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock
from keyfob.notifications.broadcast import Broadcaster, StreamOptions
from keyfob.store.engine import Database
from keyfob.store.nudge import EVENTS_STORED, REMOTES_DUE, Nudger, listening, nudge
from keyfob.store.nudge_local import nudge_folder


async def heard_within(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def becomes(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.postgres
async def test_an_accepted_remote_nudges_a_dispatcher_elsewhere(
    pg: Database, pg_url: str, clock: FakeClock
) -> None:
    elsewhere = Database(pg_url, pool_size=2)  # another process's connections
    nudged = asyncio.Event()
    app = create_app(make_settings(pg.url), database=pg, clock=clock, announce=lambda _: None)
    async with app.router.lifespan_context(app), listening(elsewhere, nudged.set):
        tenant = await make_tenant(app, pg, "alice", clock())
        async with tenant.http:
            cbid = await create_callback(tenant)
            assert await heard_within(nudged, 5), "a listener is nudged once it listens"
            nudged.clear()
            vid = tenant.vehicles["Electric"].id
            path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
            refused = await tenant.http.post(path, json={"horn": {"state": "Nope"}})
            assert refused.status_code == 400
            assert not await heard_within(nudged, 0.5), "nothing new is due"
            posted = await tenant.http.post(path, json={"horn": {"state": "Activated"}})
            assert posted.status_code == 202, posted.text
            assert await heard_within(nudged, 2), "the new remote is announced"
    await elsewhere.dispose()


async def test_on_sqlite_a_nudge_holds_no_connection(tmp_path: Path) -> None:
    """SQLite's processes share a host: nudges go by datagram (``store.nudge_local``), and the
    one connection of each process is never held for listening."""
    database = Database(f"sqlite:///{tmp_path / 'one.db'}")
    called = asyncio.Event()
    try:
        async with listening(database, called.set):
            assert await heard_within(called, 2), "a listener is nudged once it listens"
            called.clear()
            assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            await nudge(database)
            assert await heard_within(called, 2)
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_a_lost_listening_connection_listens_again(pg: Database, pg_url: str) -> None:
    elsewhere = Database(pg_url, pool_size=2)
    nudged = asyncio.Event()
    async with listening(elsewhere, nudged.set, retry_s=0.1):
        assert await heard_within(nudged, 5)
        nudged.clear()
        async with pg.transaction() as conn:  # the database drops every listener
            killed = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            )
            assert killed.all(), "a listening session existed"
        assert await heard_within(nudged, 5), "listening again, it catches up at once"
        nudged.clear()
        await nudge(pg)
        assert await heard_within(nudged, 5), "and hears new nudges"
    await elsewhere.dispose()


@pytest.mark.postgres
async def test_a_nudge_leaves_the_connection_synced_for_the_next_commit(pg_url: str) -> None:
    """The nudge's own commit skips the disk; the pooled connection it used does not (used one
    at a time, the pool holds that one connection)."""
    one = Database(pg_url, pool_size=1)
    elsewhere = Database(pg_url, pool_size=1)
    nudged = asyncio.Event()
    try:
        async with listening(elsewhere, nudged.set):
            assert await heard_within(nudged, 5)
            nudged.clear()
            await nudge(one)
            assert await heard_within(nudged, 5), "the nudge reached the listener"
        async with one.transaction() as conn:
            mode = (await conn.execute(text("SHOW synchronous_commit"))).scalar_one()
        assert mode == "on"
        assert one.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await one.dispose()
        await elsewhere.dispose()


@pytest.mark.postgres
async def test_a_nudger_keeps_one_connection_and_replaces_a_broken_one(
    pg: Database, pg_url: str
) -> None:
    """The acceptor's and the dispatcher's nudges go over one connection they keep, not a
    checkout each; one the server dropped is replaced at the next nudge, and ``close`` gives
    it back."""
    mine = Database(pg_url, pool_size=2)
    nudged = asyncio.Event()
    nudger = Nudger(mine, REMOTES_DUE)
    try:
        async with listening(pg, nudged.set):
            assert await heard_within(nudged, 5)
            for _ in range(3):
                nudged.clear()
                nudger.request()
                assert await heard_within(nudged, 5), "each nudge is heard"
                assert mine.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
            async with pg.transaction() as conn:  # the server drops the nudger's connection
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query LIKE 'SET LOCAL synchronous_commit TO OFF; NOTIFY%'"
                    )
                )
            await asyncio.sleep(0.2)
            nudged.clear()
            nudger.request()  # fails on the dead connection, which is thrown away
            assert await becomes(lambda: held(mine) == 0)
            assert not nudged.is_set()
            nudger.request()
            assert await heard_within(nudged, 5), "the next nudge goes on a new connection"
        await nudger.close()
        assert mine.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await nudger.close()
        await mine.dispose()


def held(database: Database) -> int:
    """What this process holds for listening: pooled connections on PostgreSQL (nothing else
    holds one here), its sockets in the nudge folder on SQLite."""
    if not database.sqlite:
        return int(database.engine.pool.checkedout())  # type: ignore[attr-defined]
    assert database.file is not None
    folder = nudge_folder(database.file)
    return len(list(folder.glob(f"*.{os.getpid()}.*"))) if folder.exists() else 0


async def kept(database: Database) -> int:
    """``held`` as it stays over 0.1 s: a stream's read borrows a connection for a moment."""
    found = []
    for _ in range(10):
        found.append(held(database))
        await asyncio.sleep(0.01)
    return min(found)


@pytest.mark.postgres
async def test_one_session_hears_every_channel_of_a_process(pg: Database, pg_url: str) -> None:
    elsewhere = Database(pg_url, pool_size=2)  # another process's connections
    woken = asyncio.Event()
    try:
        async with listening(elsewhere, woken.set, EVENTS_STORED, REMOTES_DUE):
            assert await heard_within(woken, 5), "a listener is woken once it listens"
            woken.clear()
            assert await kept(elsewhere) == 1, "both channels share one session"
            await nudge(pg, EVENTS_STORED)
            assert await heard_within(woken, 5), "events stored elsewhere are heard"
            woken.clear()
            await nudge(pg, REMOTES_DUE)
            assert await heard_within(woken, 5), "remotes accepted elsewhere are heard"
        assert await becomes(lambda: held(elsewhere) == 0), "the session is let go"
    finally:
        await elsewhere.dispose()


async def test_an_api_listens_only_while_someone_streams(db: Database, clock: FakeClock) -> None:
    app = create_app(make_settings(db.url), database=db, clock=clock, announce=lambda _: None)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)  # whatever it would start listening on has started
        assert await kept(db) == 0, "with no stream open, nothing listens"
        streams: Broadcaster = app.state.streams
        first = streams.subscribe("cb-1")
        second = streams.subscribe("cb-2")
        expected = 3 if db.sqlite else 1  # a socket per channel; one session for all three
        assert await becomes(lambda: held(db) == expected), "a subscriber makes it listen"
        await asyncio.sleep(0.2)
        assert await kept(db) == expected, "once, however many subscribe"
        streams.unsubscribe(first)
        await asyncio.sleep(0.2)
        assert await kept(db) == expected, "while anyone subscribes it goes on listening"
        streams.unsubscribe(second)
        assert await becomes(lambda: held(db) == 0), "the last one gone, it stops"
        third = streams.subscribe("cb-1")
        assert await becomes(lambda: held(db) == expected), "and listens again for a new one"
        streams.unsubscribe(third)


async def test_streams_are_still_served_when_listening_fails(tmp_path: Path) -> None:
    """Listening is a shortcut: when it cannot start, the broadcaster polls, and tries to
    listen again for the next subscriber."""
    database = Database(f"sqlite:///{tmp_path / 'k.db'}")
    attempts: list[object] = []

    def listen(wake: Callable[[], None]) -> AbstractAsyncContextManager[object]:
        attempts.append(wake)
        raise OSError("no room for a socket")

    class Counting(Broadcaster):
        reads = 0

        async def read_once(self) -> int:
            self.reads += 1
            return 0

    hub = Counting(database, clock=FakeClock(), listen=listen, options=StreamOptions(poll_s=0.01))
    try:
        first = hub.subscribe("cb-1")
        assert await becomes(lambda: hub.reads >= 3), "it reads at each poll"
        hub.unsubscribe(first)
        await asyncio.sleep(0.05)
        hub.subscribe("cb-1")
        assert await becomes(lambda: len(attempts) == 2), "and tries to listen again"
        before = hub.reads
        assert await becomes(lambda: hub.reads >= before + 3), "still reading"
    finally:
        await hub.stop()
        await database.dispose()
