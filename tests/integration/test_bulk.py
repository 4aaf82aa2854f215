"""``keyfob.bulk`` stores and reads exactly what SQLAlchemy's ordinary path would, on both engines.

On SQLite it must also do so in one hand-off to the driver's thread per call: that is its
reason to exist (the accept path's group commit waits on every hand-off).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, String, Table, select, tuple_

from hand_offs import count_hand_offs, sqlite_with, tables_of
from keyfob.store._sqlite import fetch_all, insert_rows
from keyfob.store.engine import Database
from keyfob.store.schema import UtcDateTime

scratch = MetaData()
things = Table(
    "bulk_things",
    scratch,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("size", Integer, nullable=True),
    Column("flag", Boolean, nullable=False),
    Column("data", JSON, nullable=True),
    Column("at", UtcDateTime, nullable=True),
)
marks = Table(
    "bulk_marks",
    scratch,
    Column("thing_id", String(32), primary_key=True),
    Column("note", String(64), nullable=False),
)
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def thing(number: int) -> dict[str, Any]:
    return {
        "id": f"t{number:03d}",
        "kind": "odd" if number % 2 else "even",
        "size": None if number % 3 == 0 else number,
        "flag": number % 2 == 0,
        "data": None if number % 4 == 0 else {"n": number, "list": [1, "é", None]},
        "at": None if number % 5 == 0 else T0 + timedelta(seconds=number, microseconds=number),
    }


@pytest.fixture
async def tables(db: Database) -> AsyncIterator[Database]:
    async with tables_of(db, scratch) as database:
        yield database


async def test_inserted_rows_read_back_as_given(tables: Database) -> None:
    rows = [thing(n) for n in range(1, 21)]
    async with tables.transaction() as conn:
        await insert_rows(conn, [(things, rows), (marks, [{"thing_id": "t001", "note": "hi"}])])
    async with tables.read() as conn:
        stored = [
            dict(r._mapping) for r in await conn.execute(select(things).order_by(things.c.id))
        ]
        notes = (await conn.execute(select(marks))).all()
    assert stored == rows
    assert [tuple(n) for n in notes] == [("t001", "hi")]


async def test_a_failed_unit_of_work_leaves_nothing(tables: Database) -> None:
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with tables.transaction() as conn:
            await insert_rows(conn, [(things, [thing(1)]), (things, [thing(2), thing(1)])])
    async with tables.read() as conn:
        assert (await conn.execute(select(things))).all() == []


async def test_fetch_all_reads_what_execute_reads(tables: Database) -> None:
    async with tables.transaction() as conn:
        await insert_rows(conn, [(things, [thing(n) for n in range(1, 21)])])
    queries = [
        select(things).where(things.c.id.in_({"t002", "t003", "t005", "t020", "zzz"})),
        select(things.c.id, things.c.at).where(things.c.kind == "odd", things.c.size.is_(None)),
        select(things).where(tuple_(things.c.id, things.c.kind).in_([("t004", "even")])),
        select(things).where(things.c.at > T0 + timedelta(seconds=15)),
        select(things).where(things.c.id.in_(set())),
    ]
    async with tables.read() as conn:
        for query in queries:
            ordered = query.order_by(things.c.id)
            expected = [dict(r._mapping) for r in await conn.execute(ordered)]
            found = [r._asdict() for r in await fetch_all(conn, ordered)]
            assert found == expected, str(query)
            assert [r.id for r in await fetch_all(conn, ordered)] == [e["id"] for e in expected]


async def test_sqlite_takes_one_hand_off_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await sqlite_with(tmp_path, scratch)
    async with database.transaction() as conn:
        calls = count_hand_offs(monkeypatch)  # from the transaction's begin on
        await insert_rows(conn, [(things, [thing(n) for n in range(1, 50)]), (marks, [])])
        inserted = len(calls)
        found = await fetch_all(conn, select(things).where(things.c.id.in_({"t001", "t002"})))
        fetched = len(calls) - inserted
    await database.dispose()
    assert (inserted, fetched, len(found)) == (1, 1, 2)
