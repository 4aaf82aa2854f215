"""``steps.run_unit``: a plan of steps runs as one transaction, on SQLite in one hand-off.

The same plan must give the same answer and leave the same rows on both engines; a failure
anywhere leaves nothing; a step the one-hand-off path cannot take still runs, step by step.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    select,
    update,
)

from hand_offs import count_hand_offs, sqlite_with, tables_of
from keyfob.store.engine import Database
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import ByKey, Execute, Fetch, Insert, Plan, only, ready, run_unit, steps

scratch = MetaData()
items = Table(
    "steps_items",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("data", JSON, nullable=True),
    Column("at", UtcDateTime, nullable=True),
)
others = Table(
    "steps_others",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def item(number: int) -> dict[str, Any]:
    return {"id": f"i{number}", "n": number, "data": {"n": [number]}, "at": T0}


def restock(wanted: set[str], *, fail: bool = False) -> Plan[list[str]]:
    """Read which ids exist, add the missing ones, drop odd ones, answer what was added."""
    found = yield Fetch(select(items.c.id, items.c.data).where(items.c.id.in_(wanted)))
    assert all(row.data == {"n": [int(row.id[1:])]} for row in found), "JSON read back"
    missing = sorted(wanted - {row.id for row in found})
    yield Insert([(items, [item(int(i[1:])) for i in missing])])
    if fail:
        raise RuntimeError("the plan failed after writing")
    yield Execute(delete(items).where(items.c.n % 2 == 1))
    return missing


def plain_insert(rows: list[dict[str, Any]]) -> Plan[None]:
    yield Insert([(items, rows)])


@pytest.fixture
async def tables(db: Database) -> AsyncIterator[Database]:
    async with tables_of(db, scratch) as database:
        yield database


async def stored(database: Database) -> list[tuple[Any, ...]]:
    async with database.read() as conn:
        rows = await conn.execute(select(items.c.id, items.c.n, items.c.at).order_by(items.c.id))
        return [tuple(row) for row in rows]


async def test_a_unit_answers_and_commits(tables: Database) -> None:
    assert await run_unit(tables, lambda: restock({"i2", "i3", "i4"})) == ["i2", "i3", "i4"]
    assert await stored(tables) == [("i2", 2, T0), ("i4", 4, T0)]
    assert await run_unit(tables, lambda: restock({"i2", "i6"})) == ["i6"]
    assert [row[0] for row in await stored(tables)] == ["i2", "i4", "i6"]


async def test_a_failed_unit_leaves_nothing(tables: Database) -> None:
    await run_unit(tables, lambda: restock({"i2"}))
    with pytest.raises(RuntimeError, match="after writing"):
        await run_unit(tables, lambda: restock({"i4", "i8"}, fail=True))
    assert [row[0] for row in await stored(tables)] == ["i2"]
    assert await run_unit(tables, lambda: restock({"i4"})) == ["i4"], "the connection is usable"


async def test_a_step_the_one_trip_cannot_take_still_runs(tables: Database) -> None:
    def doubled(moment: datetime) -> Plan[list[int]]:
        yield Insert([(items, [item(1), item(2)])])
        # An unnamed computed column has no name to read it by: not a one-trip step.
        rows = yield Fetch(select(items.c.n * 2).where(items.c.at.in_([moment])))
        return sorted(row[0] for row in rows)

    assert await run_unit(tables, lambda: doubled(T0)) == [2, 4]
    assert len(await stored(tables)) == 2, "the fallback ran the unit exactly once"


async def test_sqlite_runs_a_unit_in_one_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await sqlite_with(tmp_path, scratch)
    calls = count_hand_offs(monkeypatch)
    answer = await run_unit(database, lambda: restock({"i1", "i2", "i3"}))
    monkeypatch.undo()
    assert (answer, len(calls)) == (["i1", "i2", "i3"], 1)
    assert [row[0] for row in await stored(database)] == ["i2"]
    await database.dispose()


async def test_updates_per_row_report_what_they_touched(tables: Database) -> None:
    def renumber(changes: list[dict[str, Any]]) -> Plan[tuple[int, None, None]]:
        once = yield Execute(update(items).where(items.c.n > 1).values(n=items.c.n + 100))
        touched = yield Execute(
            update(items)
            .where(items.c.id == bindparam("b_id"))
            .values(n=bindparam("b_n"), at=bindparam("b_at")),
            changes,
        )
        nothing = yield Execute(update(items).values(n=0), [])
        return once, touched, nothing

    later = T0.replace(hour=13)
    changes = [{"b_id": "i1", "b_n": 10, "b_at": later}, {"b_id": "i9", "b_n": 90, "b_at": later}]
    await run_unit(tables, lambda: plain_insert([item(1), item(2), item(3)]))
    assert await run_unit(tables, lambda: renumber(changes)) == (2, None, None)
    assert await stored(tables) == [("i1", 10, later), ("i2", 102, T0), ("i3", 103, T0)]


async def test_timestamps_json_and_per_row_updates_stay_in_one_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parameters that need converting (timestamps, JSON), IN lists and per-row updates are
    what the dispatcher's units use: none of them may push a unit off the one-trip path."""
    database = await sqlite_with(tmp_path, scratch)
    later = T0.replace(hour=13)

    def busy() -> Plan[list[str]]:
        yield Insert([(items, [item(1), item(2), item(3)])])
        yield Execute(
            update(items)
            .where(items.c.id == bindparam("b_id"))
            .values(at=bindparam("b_at"), data=bindparam("b_data")),
            [{"b_id": "i1", "b_at": later, "b_data": {"late": True}}],
        )
        yield Execute(update(items).where(items.c.at < later).values(n=items.c.n + 10))
        rows = yield Fetch(
            select(items.c.id).where(items.c.at.in_([later]), items.c.id.in_({"i1", "i2"}))
        )
        return [row.id for row in rows]

    calls = count_hand_offs(monkeypatch)
    found = await run_unit(database, busy)
    monkeypatch.undo()
    assert (found, len(calls)) == (["i1"], 1)
    assert await stored(database) == [("i1", 1, later), ("i2", 12, T0), ("i3", 13, T0)]
    await database.dispose()


async def test_a_unit_with_nothing_to_do_does_not_wait_for_the_write_lock(
    tmp_path: Path,
) -> None:
    """Another process holding SQLite's write lock delays only units that write something."""
    database = await sqlite_with(tmp_path, scratch)

    def nothing() -> Plan[str]:
        if False:  # a plan that decides it has no step to run
            yield Insert([])
        return "idle"

    other = sqlite3.connect(tmp_path / "hand-offs.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert await asyncio.wait_for(run_unit(database, nothing), 2) == "idle"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_unit(database, lambda: plain_insert([item(1)])), 0.5)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await database.dispose()


BY_IDS = select(items.c.id, items.c.n).where(items.c.id.in_(bindparam("ids", expanding=True)))


async def test_a_statement_built_once_takes_its_values_as_parameters(tables: Database) -> None:
    await run_unit(tables, lambda: plain_insert([item(n) for n in range(1, 6)]))

    def pick(ids: list[str]) -> Plan[list[tuple[str, int]]]:
        rows = yield Fetch(BY_IDS, {"ids": ids})
        return sorted((row.id, row.n) for row in rows)

    assert await run_unit(tables, lambda: pick(["i2", "i4"])) == [("i2", 2), ("i4", 4)]
    assert await run_unit(tables, lambda: pick(["i1", "i3", "i5", "i9"])) == [
        ("i1", 1),
        ("i3", 3),
        ("i5", 5),
    ]


async def test_per_row_updates_of_a_constant_statement_mix_row_and_own_values(
    tables: Database,
) -> None:
    """Values the rows carry, values the statement holds, timestamps and JSON, per row."""
    await run_unit(tables, lambda: plain_insert([item(n) for n in range(1, 5)]))
    renumber = (
        update(items)
        .where(items.c.id == bindparam("r_id"), items.c.n < 100)
        .values(n=bindparam("r_n"), data=bindparam("r_data"), at=bindparam("r_at"))
    )
    later = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    changes = [
        {"r_id": "i1", "r_n": 11, "r_data": {"k": [1]}, "r_at": later},
        {"r_id": "i3", "r_n": 33, "r_data": None, "r_at": later},
    ]
    for _ in range(2):  # the second time from the kept shape
        await run_unit(tables, lambda: only(Execute(renumber, changes)))
    async with tables.read() as conn:
        rows = await conn.execute(select(items).order_by(items.c.id))
        found = [(r.id, r.n, r.data, r.at) for r in rows]
    assert found == [
        ("i1", 11, {"k": [1]}, later),
        ("i2", 2, {"n": [2]}, T0),
        ("i3", 33, None, later),
        ("i4", 4, {"n": [4]}, T0),
    ]


async def test_steps_made_ready_before_the_transaction_write_the_same_rows(
    tables: Database,
) -> None:
    """``ready`` works a write out before its unit (the delivery worker's outcomes): on SQLite
    only the statements run in the transaction; either way the rows and answers are those of
    the plain steps."""
    later = T0.replace(hour=13)
    work = [
        Insert([(items, [item(1), item(2), item(3)])]),
        Execute(
            update(items)
            .where(items.c.id == bindparam("b_id"))
            .values(at=bindparam("b_at"), data=bindparam("b_data")),
            [{"b_id": "i1", "b_at": later, "b_data": {"late": True}}],
        ),
        Execute(update(items).where(items.c.id.in_(["i2", "i3", "i9"])).values(n=items.c.n + 10)),
        Execute(update(items).values(n=0), []),
    ]
    made = [ready(tables, step) for step in work]
    assert all((step.sqlite is not None) == tables.sqlite for step in made)

    def run() -> Plan[list[Any]]:
        answers = []
        for step in made:
            answers.append((yield step))
        return answers

    assert await run_unit(tables, run) == [None, None, 2, None]
    assert await stored(tables) == [("i1", 1, later), ("i2", 12, T0), ("i3", 13, T0)]
    async with tables.read() as conn:
        data = (await conn.execute(select(items.c.data).where(items.c.id == "i1"))).scalar()
    assert data == {"late": True}
    await run_unit(tables, lambda: steps([ready(tables, Execute(delete(items)))]))
    assert await stored(tables) == []


async def test_an_update_by_key_runs_per_row_and_leaves_rows_whose_stored_time_is_later(
    tables: Database,
) -> None:
    """SQLite takes a ``ByKey`` update row by row, with the same rule for older reports."""
    later, half_past = T0.replace(hour=13), T0.replace(hour=12, minute=30)
    await run_unit(
        tables,
        lambda: plain_insert([item(1), {**item(2), "at": later}, {**item(3), "at": None}]),
    )
    guarded = ByKey(items, "id", ("n", "at"), prefix="k_", unless_newer="at")
    reports = [{"k_id": f"i{n}", "k_n": 10 * n, "k_at": half_past} for n in (1, 2, 3)]
    await run_unit(tables, lambda: only(guarded.rows(reports)))
    assert await stored(tables) == [("i1", 10, half_past), ("i2", 2, later), ("i3", 30, half_past)]
