"""Two processes writing one SQLite file: the writer lock, and units of work in one trip.

``serve`` and its delivery child share the embedded database. What a user would notice if
this broke: a process waiting for the other's write lock long after it came free (latency), a
crashed process leaving the other locked out (an outage), or a worker's claim or record half
written (a notification sent twice or never).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hand_offs import count_hand_offs, sqlite_with
from keyfob.store.engine import Database
from keyfob.store.one_trip import run_in_one_trip
from keyfob.store.writer_lock import WriterLock, lock_path

scratch = MetaData()
rows = Table(
    "writers_rows",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@contextmanager
def _holder(path: str, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the writer lock for ``seconds`` (or until killed)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, path, str(seconds)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield proc
        finally:
            proc.kill()


def test_a_waiting_writer_gets_in_as_soon_as_the_other_process_lets_go(tmp_path: Path) -> None:
    path = lock_path(str(tmp_path / "keyfob.db"))
    lock = WriterLock(path)
    with _holder(path, 0.3):
        started = time.monotonic()
        lock.acquire(5.0)
        waited = time.monotonic() - started
        lock.release()
    lock.close()
    # Held for 0.3 s by the other process: ours came right after it, not seconds later.
    assert 0.2 <= waited < 2.0


def test_a_lock_never_let_go_fails_as_a_locked_database(tmp_path: Path) -> None:
    path = lock_path(str(tmp_path / "keyfob.db"))
    lock = WriterLock(path)
    with _holder(path, 30), pytest.raises(sqlite3.OperationalError, match="database is locked"):
        lock.acquire(0.2)
    lock.close()


def test_a_crashed_holder_leaves_nothing_locked(tmp_path: Path) -> None:
    path = lock_path(str(tmp_path / "keyfob.db"))
    with _holder(path, 30) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    lock = WriterLock(path)
    lock.acquire(1.0)  # the kernel dropped the dead process's lock
    lock.release()
    lock.close()


async def test_a_transaction_waits_for_the_other_writer_and_then_commits(tmp_path: Path) -> None:
    database = await sqlite_with(tmp_path, scratch)
    assert database.writer_lock is not None
    with _holder(database.writer_lock.path, 0.3):
        started = time.monotonic()
        async with database.transaction() as conn:
            await conn.execute(insert(rows), {"id": "a", "n": 1})
        waited = time.monotonic() - started
    assert 0.2 <= waited < 2.0  # it waited for the other writer, then went in at once
    async with database.read() as conn:
        assert (await conn.execute(select(rows.c.n))).scalars().all() == [1]
    await database.dispose()


async def test_a_unit_of_work_runs_whole_in_one_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await sqlite_with(tmp_path, scratch)

    async def add_two(conn: AsyncConnection) -> int:
        await conn.execute(insert(rows), [{"id": "a", "n": 1}, {"id": "b", "n": 2}])
        return int((await conn.execute(select(func.sum(rows.c.n)))).scalar_one())

    calls = count_hand_offs(monkeypatch)
    assert await run_in_one_trip(database, add_two) == 3
    monkeypatch.undo()
    assert len(calls) == 1
    async with database.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(rows))).scalar_one() == 2
    await database.dispose()


async def test_a_unit_that_fails_leaves_nothing_and_the_next_one_runs(tmp_path: Path) -> None:
    database = await sqlite_with(tmp_path, scratch)

    async def add_then_fail(conn: AsyncConnection) -> None:
        await conn.execute(insert(rows), {"id": "a", "n": 1})
        await conn.execute(insert(rows), {"id": "a", "n": 2})  # the same key: refused

    with pytest.raises(Exception, match="UNIQUE"):
        await run_in_one_trip(database, add_then_fail)

    async def nothing(conn: AsyncConnection) -> str:
        return "done"

    assert await run_in_one_trip(database, nothing) == "done"  # no statement, still ends

    async def add(conn: AsyncConnection) -> None:
        await conn.execute(insert(rows), {"id": "b", "n": 5})

    await run_in_one_trip(database, add)
    async with database.read() as conn:
        assert (await conn.execute(select(rows.c.id))).scalars().all() == ["b"]
    await database.dispose()


async def test_a_unit_that_awaits_something_else_runs_the_ordinary_way(tmp_path: Path) -> None:
    database = await sqlite_with(tmp_path, scratch)
    attempts: list[Any] = []

    async def add_after_a_pause(conn: AsyncConnection) -> None:
        attempts.append(conn)
        await conn.execute(insert(rows), {"id": "a", "n": 1})
        await asyncio.sleep(0.01)  # not a statement: cannot finish on the driver's thread
        await conn.execute(insert(rows), {"id": "b", "n": 2})

    await run_in_one_trip(database, add_after_a_pause)
    assert len(attempts) == 2  # tried in one trip, rolled back, run again
    async with database.read() as conn:
        assert (await conn.execute(select(rows.c.id).order_by(rows.c.id))).scalars().all() == [
            "a",
            "b",
        ]
    await database.dispose()


async def test_another_process_writes_between_two_units_of_this_one(tmp_path: Path) -> None:
    database = await sqlite_with(tmp_path, scratch)
    file = tmp_path / "hand-offs.db"

    async def add(conn: AsyncConnection, key: str) -> None:
        await conn.execute(insert(rows), {"id": key, "n": 1})

    await run_in_one_trip(database, lambda conn: add(conn, "a"))
    other = sqlite3.connect(file, timeout=5)
    other.execute("INSERT INTO writers_rows (id, n) VALUES ('b', 2)")
    other.commit()
    other.close()
    await run_in_one_trip(database, lambda conn: add(conn, "c"))
    async with database.read() as conn:
        assert (await conn.execute(select(func.sum(rows.c.n)))).scalar_one() == 4
    await database.dispose()


async def test_postgres_runs_the_unit_in_an_ordinary_transaction() -> None:
    url = os.environ.get("KEYFOB_TEST_PG")
    if not url:
        pytest.fail("KEYFOB_TEST_PG is not set: scripts/services provides PostgreSQL")
    database = Database(url)
    assert database.writer_lock is None

    async def answer(conn: AsyncConnection) -> int:
        return int((await conn.execute(select(1))).scalar_one())

    assert await run_in_one_trip(database, answer) == 1
    await database.dispose()


async def test_an_unsynced_unit_skips_the_disk_wait_for_its_own_commit_only(
    tmp_path: Path,
) -> None:
    database = await sqlite_with(tmp_path, scratch)  # synchronous=FULL, the default
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

    async def level(conn: AsyncConnection) -> str:
        await conn.execute(insert(rows), {"id": f"r{len(seen)}", "n": 1})
        return levels[int((await conn.execute(text("PRAGMA synchronous"))).scalar_one())]

    seen: list[str] = []
    seen.append(await run_in_one_trip(database, level, synced=False))
    seen.append(await run_in_one_trip(database, level))
    assert seen == ["NORMAL", "FULL"]
    async with database.read() as conn:  # and the connection is back to FULL for the rest
        assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 2
        assert (await conn.execute(select(func.count()).select_from(rows))).scalar_one() == 2
    await database.dispose()


async def test_an_unsynced_unit_on_postgresql_commits_without_waiting_for_the_disk(
    pg: Database,
) -> None:
    """The same promise on PostgreSQL: ``synchronous_commit`` off for that transaction only."""

    async def level(conn: AsyncConnection) -> str:
        return str((await conn.execute(text("SHOW synchronous_commit"))).scalar_one())

    async with pg.read() as conn:
        default = await level(conn)  # "on" unless the server was set otherwise
    assert await run_in_one_trip(pg, level, synced=False) == "off"
    assert await run_in_one_trip(pg, level) == default
    async with pg.read() as conn:  # no pooled connection keeps the setting
        assert await level(conn) == default


async def test_a_long_running_process_checkpoints_the_log_on_its_own_thread(
    tmp_path: Path,
) -> None:
    file = tmp_path / "checkpoints.db"
    database = Database(f"sqlite:///{file}", sqlite_synchronous="NORMAL", checkpoint_every_s=0.02)
    assert database.checkpointer is not None
    async with database.transaction() as conn:
        await conn.run_sync(scratch.create_all)
    for n in range(3000):  # about 3,000 pages of log, three times SQLite's own threshold
        async with database.transaction() as conn:
            await conn.execute(insert(rows), {"id": f"r{n}", "n": n})
    async with database.read() as conn:
        # No commit checkpoints here any more: the thread does, so the log is reused and stays
        # small instead of growing by every page written.
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 0
        assert (await conn.execute(select(func.count()).select_from(rows))).scalar_one() == 3000
    assert database.checkpointer.rounds > 0
    assert database.checkpointer.restarts > 0  # the log was copied whole and began again
    wal = Path(f"{file}-wal")
    assert wal.stat().st_size < 1500 * 4096
    await database.dispose()
    assert not database.checkpointer._thread.is_alive()
