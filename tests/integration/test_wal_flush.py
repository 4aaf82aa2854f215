"""SQLite's disk wait outside the write lock: commit, let the lock go, flush the log, answer.

What a user would notice if this broke: a 202 (or an event recorded, or a webhook sent after a
claim) given before the commit behind it is on disk, so that a power cut takes back something
keyfob already answered for; or every process of the embedded default waiting for each other's
disk flushes again, the latency this was built to remove.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store import wal_sync
from keyfob.store.engine import Database
from keyfob.store.one_trip import run_in_one_trip
from keyfob.store.units import Fetch, Insert, Plan, run_unit, sqlite_turn
from keyfob.store.writer_lock import WriterLock

scratch = MetaData()
rows = Table(
    "flush_rows",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)
_COUNT = select(func.count().label("n")).select_from(rows)  # a one-trip read


class Flushes:
    """``fdatasync`` as the flusher calls it, with what was true at that moment."""

    def __init__(self, database: Database) -> None:
        assert database.file is not None
        assert database.writer_lock is not None
        self.file = database.file
        self.lock_path = database.writer_lock.path
        self.seen: list[dict[str, object]] = []
        self.events: list[str] = []

    def __call__(self, fd: int) -> None:
        other = WriterLock(self.lock_path)  # another descriptor: as another process would
        try:
            other.acquire(0.05)
            other.release()
            lock_free = True
        except sqlite3.OperationalError:
            lock_free = False
        finally:
            other.close()
        reader = sqlite3.connect(self.file)
        try:
            visible = reader.execute("SELECT count(*) FROM flush_rows").fetchone()[0]
        finally:
            reader.close()
        self.seen.append(
            {"file": os.readlink(f"/proc/self/fd/{fd}"), "lock_free": lock_free, "rows": visible}
        )
        self.events.append("flushed")
        _real_fdatasync(fd)


_real_fdatasync = os.fdatasync


@pytest.fixture
async def database(tmp_path: Path) -> Iterator[Database]:  # type: ignore[misc]
    found = Database(f"sqlite:///{tmp_path / 'flush.db'}")  # synchronous=FULL, the default
    async with found.transaction() as conn:
        await conn.run_sync(scratch.create_all)
    yield found
    await found.dispose()


@pytest.fixture
def flushes(database: Database, monkeypatch: pytest.MonkeyPatch) -> Flushes:
    recorder = Flushes(database)
    monkeypatch.setattr(wal_sync.os, "fdatasync", recorder)
    return recorder


def _add(n: int) -> Plan[int]:
    yield Insert([(rows, [{"id": f"r{n}", "n": n}])])
    return n


def _count() -> Plan[int]:
    found = yield Fetch(_COUNT)
    return int(found[0][0])


async def _level(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(text("PRAGMA synchronous"))).scalar_one())


async def test_a_unit_is_answered_after_its_commit_is_flushed_with_the_lock_already_free(
    database: Database, flushes: Flushes
) -> None:
    assert await run_unit(database, lambda: _add(1)) == 1
    flushes.events.append("answered")
    assert flushes.events == ["flushed", "answered"]
    # The commit was in the log, readable by others, and the lock free, while the disk worked.
    assert flushes.seen == [{"file": f"{database.file}-wal", "lock_free": True, "rows": 1}]
    assert await _level(database) == 2  # the connection is back to FULL for everything else


async def test_units_queued_on_one_connection_are_each_answered_after_a_flush(
    database: Database, flushes: Flushes
) -> None:
    async with sqlite_turn(database) as submit:
        assert submit is not None
        answers = [submit(_add(n)) for n in (1, 2, 3)]
        assert [await answer for answer in answers] == [1, 2, 3]
    assert len(flushes.seen) == 3
    assert all(seen["lock_free"] for seen in flushes.seen)
    assert [seen["rows"] for seen in flushes.seen] == [1, 2, 3]


async def test_a_unit_that_runs_no_step_flushes_nothing_and_one_that_reads_flushes(
    database: Database, flushes: Flushes
) -> None:
    def idle() -> Plan[str]:
        if False:  # a plan that decides it has nothing to do
            yield Fetch(_COUNT)
        return "idle"

    assert await run_unit(database, idle) == "idle"
    assert flushes.seen == []
    # What a unit read may have been committed a moment ago by a process still flushing it,
    # and its caller may answer on it (an Idempotency-Key replayed): it is flushed first.
    assert await run_unit(database, _count) == 0
    assert len(flushes.seen) == 1


async def test_a_claim_flushes_what_it_read_before_its_caller_acts_on_it(
    database: Database, flushes: Flushes
) -> None:
    await run_unit(database, lambda: _add(1))  # committed by "another process", then flushed
    flushes.seen.clear()

    async def claim(conn: AsyncConnection) -> int:
        return int((await conn.execute(_COUNT)).scalar_one())

    assert await run_in_one_trip(database, claim, synced=False, flush_read=True) == 1
    assert flushes.seen == [{"file": f"{database.file}-wal", "lock_free": True, "rows": 1}]
    # Work whose caller does not act on what it read outside keyfob flushes nothing.
    assert await run_in_one_trip(database, claim, synced=False) == 1
    assert len(flushes.seen) == 1


async def test_with_synchronous_normal_chosen_nothing_is_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``db_sqlite_synchronous = "NORMAL"`` trades durability for speed: no flush is added."""
    database = Database(f"sqlite:///{tmp_path / 'normal.db'}", sqlite_synchronous="NORMAL")
    calls: list[int] = []
    monkeypatch.setattr(wal_sync.os, "fdatasync", calls.append)
    try:
        async with database.transaction() as conn:
            await conn.run_sync(scratch.create_all)
        assert await run_unit(database, lambda: _add(1)) == 1
        assert calls == []
        assert await _level(database) == 1
    finally:
        await database.dispose()


async def test_a_failing_flush_reaches_the_caller(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails the flush fails the unit: nothing is answered as stored."""

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(wal_sync.os, "fdatasync", broken)
    with pytest.raises(OSError, match="Input/output error"):
        await run_unit(database, lambda: _add(1))
    monkeypatch.undo()
    assert await run_unit(database, lambda: _add(2)) == 2  # the connection is usable again
    assert await _level(database) == 2


async def test_a_reader_about_to_send_what_it_read_flushes_first(
    database: Database, flushes: Flushes, tmp_path: Path
) -> None:
    """The event streams send rows another process may have committed a moment ago."""
    await database.flush_read()
    assert len(flushes.seen) == 1
    normal = Database(f"sqlite:///{tmp_path / 'normal.db'}", sqlite_synchronous="NORMAL")
    try:
        await normal.flush_read()  # NORMAL chosen: nothing to wait for
    finally:
        await normal.dispose()
    assert len(flushes.seen) == 1
