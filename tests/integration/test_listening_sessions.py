"""What listening for nudges holds: one session per process, and none in an API nobody streams.

On PostgreSQL every NOTIFY wakes every listening session of the database, whatever its channel,
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

from conftest import make_settings
from keyfob.api.app import create_app
from keyfob.kit.clock import FakeClock
from keyfob.notifications.broadcast import Broadcaster, StreamOptions
from keyfob.store.engine import Database
from keyfob.store.nudge import EVENTS_STORED, REMOTES_DUE, listening, nudge
from keyfob.store.nudge_local import nudge_folder


async def heard_within(event: asyncio.Event, seconds: float = 5.0) -> bool:
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


def held(database: Database) -> int:
    """What this process holds for listening: pooled connections on PostgreSQL (nothing else
    holds one here), its sockets in the nudge folder on SQLite."""
    if not database.sqlite:
        return int(database.engine.pool.checkedout())  # type: ignore[attr-defined]
    assert database.file is not None
    folder = nudge_folder(database.file)
    return len(list(folder.glob(f"*.{os.getpid()}.*"))) if folder.exists() else 0


@pytest.mark.postgres
async def test_one_session_hears_every_channel_of_a_process(pg: Database, pg_url: str) -> None:
    elsewhere = Database(pg_url, pool_size=2)  # another process's connections
    woken = asyncio.Event()
    try:
        async with listening(elsewhere, woken.set, EVENTS_STORED, REMOTES_DUE):
            assert await heard_within(woken), "a listener is woken once it listens"
            woken.clear()
            assert held(elsewhere) == 1, "both channels share one session"
            await nudge(pg, EVENTS_STORED)
            assert await heard_within(woken), "events stored elsewhere are heard"
            woken.clear()
            await nudge(pg, REMOTES_DUE)
            assert await heard_within(woken), "remotes accepted elsewhere are heard"
        assert await becomes(lambda: held(elsewhere) == 0), "the session is let go"
    finally:
        await elsewhere.dispose()


async def test_an_api_listens_only_while_someone_streams(db: Database, clock: FakeClock) -> None:
    app = create_app(make_settings(db.url), database=db, clock=clock, announce=lambda _: None)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)  # whatever it would start listening on has started
        assert held(db) == 0, "with no stream open, nothing listens"
        streams: Broadcaster = app.state.streams
        first = streams.subscribe("cb-1")
        second = streams.subscribe("cb-2")
        expected = 2 if db.sqlite else 1  # a socket per channel; one session for both
        assert await becomes(lambda: held(db) == expected), "a subscriber makes it listen"
        await asyncio.sleep(0.2)
        assert held(db) == expected, "once, however many subscribe"
        streams.unsubscribe(first)
        await asyncio.sleep(0.2)
        assert held(db) == expected, "while anyone subscribes it goes on listening"
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
