"""Units of work waiting for SQLite's connection together share one transaction and one flush.

What a user would notice if this broke: one remote's failure (a duplicate, a rule broken)
undoing another caller's work, or a caller answered for work that was never committed; or,
the reason for the grouping, the embedded default making a transaction (and a wait for the
disk) per unit again when units pile up behind the write lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from hand_offs import count_hand_offs
from keyfob.store import wal_sync
from keyfob.store.engine import Database, Timeouts
from keyfob.store.units import Fetch, Insert, Plan, run_unit

scratch = MetaData()
rows = Table(
    "group_rows",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)
_ALL = select(rows.c.id).order_by(rows.c.id)
_TOTAL = select(func.coalesce(func.sum(rows.c.n), 0).label("total"))


class Refused(Exception):
    """A plan's own decision to fail, after it wrote."""


def _add(name: str, n: int = 1) -> Plan[str]:
    yield Insert([(rows, [{"id": name, "n": n}])])
    return name


def _add_then_refuse(name: str) -> Plan[str]:
    yield Insert([(rows, [{"id": name, "n": 1}])])
    raise Refused(name)


def _total_then_add(name: str) -> Plan[int]:
    found = yield Fetch(_TOTAL)
    yield Insert([(rows, [{"id": name, "n": 100}])])
    return int(found[0].total)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    found = Database(f"sqlite:///{tmp_path / 'group.db'}", timeouts=Timeouts(busy=3.0))
    async with found.transaction() as conn:
        await conn.run_sync(scratch.create_all)
    yield found
    await found.dispose()


@contextmanager
def lock_held_elsewhere(database: Database) -> Iterator[sqlite3.Connection]:
    """SQLite's write lock held by another connection, as another process would hold it."""
    assert database.file is not None
    other = sqlite3.connect(database.file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


async def _stored(database: Database) -> list[str]:
    async with database.read() as conn:
        return list((await conn.execute(_ALL)).scalars())


def _count_flushes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    flushes: list[int] = []
    real = wal_sync.os.fdatasync

    def counted(fd: int) -> None:
        flushes.append(fd)
        real(fd)

    monkeypatch.setattr(wal_sync.os, "fdatasync", counted)
    return flushes


async def _queued_behind_the_lock(database: Database, plans: list[Any]) -> list[Any]:
    """The first plan taken to the driver's thread and stuck on the lock, the rest queued
    meanwhile; the lock then let go. Every outcome, errors included, in order."""
    with lock_held_elsewhere(database) as other:
        first = asyncio.ensure_future(run_unit(database, plans[0]))
        await asyncio.sleep(0.2)  # on the thread now, waiting for the lock
        rest = [asyncio.ensure_future(run_unit(database, plan)) for plan in plans[1:]]
        await asyncio.sleep(0.05)
        assert not first.done()
        other.execute("ROLLBACK")
        return list(await asyncio.gather(first, *rest, return_exceptions=True))


async def test_units_queued_while_the_lock_is_busy_commit_in_one_transaction_and_one_flush(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    hand_offs = count_hand_offs(monkeypatch)
    flushes = _count_flushes(monkeypatch)
    names = [f"r{n}" for n in range(6)]
    answers = await _queued_behind_the_lock(database, [lambda n=n: _add(n) for n in names])
    monkeypatch.undo()
    assert answers == names
    assert await _stored(database) == names
    assert (len(hand_offs), len(flushes)) == (1, 1)


async def test_a_unit_that_fails_in_a_group_undoes_only_its_own_writes(
    database: Database,
) -> None:
    answers = await _queued_behind_the_lock(
        database,
        [
            lambda: _add("a"),
            lambda: _add_then_refuse("b"),
            lambda: _add("a"),  # the same key again: this step fails, not the group
            lambda: _add("c"),
        ],
    )
    assert answers[0] == "a"
    assert isinstance(answers[1], Refused)
    assert isinstance(answers[2], sqlite3.IntegrityError)
    assert answers[3] == "c"
    assert await _stored(database) == ["a", "c"]


async def test_when_the_unit_that_began_the_transaction_fails_the_next_ones_still_commit(
    database: Database,
) -> None:
    answers = await _queued_behind_the_lock(
        database,
        [lambda: _add_then_refuse("a"), lambda: _add("b"), lambda: _add_then_refuse("c")],
    )
    assert isinstance(answers[0], Refused)
    assert answers[1] == "b"
    assert isinstance(answers[2], Refused)
    assert await _stored(database) == ["b"]
    assert await run_unit(database, lambda: _add("d")) == "d"  # the lock was let go


async def test_units_of_a_group_run_in_the_order_queued_and_see_each_others_writes(
    database: Database,
) -> None:
    answers = await _queued_behind_the_lock(
        database,
        [lambda: _add("a", 1), lambda: _total_then_add("b"), lambda: _total_then_add("c")],
    )
    assert answers == ["a", 1, 101]


async def test_when_the_lock_is_not_had_in_time_every_unit_of_the_group_fails_and_none_is_stored(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'busy.db'}", timeouts=Timeouts(busy=0.4))
    async with database.transaction() as conn:
        await conn.run_sync(scratch.create_all)
    with lock_held_elsewhere(database):
        answers = await asyncio.gather(
            *(run_unit(database, lambda n=n: _add(n)) for n in ("a", "b", "c")),
            return_exceptions=True,
        )
    assert all(isinstance(answer, sqlite3.OperationalError) for answer in answers), answers
    assert await _stored(database) == []
    await database.dispose()


async def test_a_unit_whose_caller_stopped_waiting_before_it_was_taken_is_not_run(
    database: Database,
) -> None:
    with lock_held_elsewhere(database) as other:
        first = asyncio.ensure_future(run_unit(database, lambda: _add("a")))
        await asyncio.sleep(0.2)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_unit(database, lambda: _add("b")), 0.1)
        other.execute("ROLLBACK")
        assert await first == "a"
    assert await _stored(database) == ["a"]


async def test_a_unit_the_one_trip_cannot_take_still_runs_once_beside_its_group(
    database: Database,
) -> None:
    def doubled() -> Plan[list[int]]:
        yield Insert([(rows, [{"id": "d", "n": 2}])])
        # An unnamed computed column has no name to read it by: not a one-trip step.
        found = yield Fetch(select(rows.c.n * 2).where(rows.c.id == "d"))
        return [row[0] for row in found]

    answers = await _queued_behind_the_lock(
        database, [lambda: _add("a"), doubled, lambda: _add("c")]
    )
    assert answers == ["a", [4], "c"]
    assert await _stored(database) == ["a", "c", "d"]


async def test_disposing_waits_for_a_unit_its_caller_gave_up_on(database: Database) -> None:
    with lock_held_elsewhere(database) as other:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_unit(database, lambda: _add("late")), 0.2)
        other.execute("ROLLBACK")
    await database.dispose()  # the fixture disposes again: a no-op
    check = sqlite3.connect(str(database.file))
    try:
        assert check.execute("SELECT id FROM group_rows").fetchall() == [("late",)]
    finally:
        check.close()
