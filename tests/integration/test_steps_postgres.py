"""``run_unit`` on PostgreSQL: plain steps go straight to asyncpg, inside SQLAlchemy's transaction.

What a user would notice if the direct path went wrong: a unit whose statements ran outside the
transaction (half a unit left after a failure), a failure that no longer reads as SQLAlchemy's
(a constraint violation answered as something else), a connection killed under a unit that
stays in the pool and fails the next unit too, or rows of a multi-row insert (one statement
over arrays) stored other than as written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, literal_column, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from test_steps import T0, item, items, others, plain_insert, restock, scratch, stored

from hand_offs import tables_of
from keyfob.store.engine import Database
from keyfob.store.units import ByKey, Fetch, Insert, Plan, only, run_unit

pytestmark = pytest.mark.postgres


@pytest.fixture
async def tables(pg: Database) -> AsyncIterator[Database]:
    async with tables_of(pg, scratch) as database:
        yield database


def sqlalchemy_statements(database: Database) -> list[str]:
    """A list that grows by one for every statement SQLAlchemy hands to the driver."""
    seen: list[str] = []

    def executed(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", executed)
    return seen


def counted_statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every statement sent to asyncpg, with how many parameter sets went with it."""
    sent: list[tuple[str, int]] = []
    many = asyncpg.Connection.executemany
    execute = asyncpg.Connection.execute

    async def counted_many(self: Any, sql: str, args: Any, **kw: Any) -> Any:
        sent.append((sql, len(args)))
        return await many(self, sql, args, **kw)

    async def counted(self: Any, sql: str, *args: Any, **kw: Any) -> Any:
        sent.append((sql, 1))
        return await execute(self, sql, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "executemany", counted_many)
    monkeypatch.setattr(asyncpg.Connection, "execute", counted)
    return sent


async def test_plain_steps_bypass_sqlalchemy_and_commit_as_one_unit(tables: Database) -> None:
    seen = sqlalchemy_statements(tables)
    assert await run_unit(tables, lambda: restock({"i2", "i3", "i4"})) == ["i2", "i3", "i4"]
    assert seen == [], "every step of the unit went to asyncpg"
    assert await stored(tables) == [("i2", 2, T0), ("i4", 4, T0)]


async def test_a_step_that_needs_sqlalchemy_runs_in_the_same_transaction(
    tables: Database,
) -> None:
    def mixed() -> Plan[None]:
        yield Insert([(items, [item(1)])])
        yield Fetch(select(items.c.n * 2))  # unnamed column: SQLAlchemy's path
        raise RuntimeError("after both")

    seen = sqlalchemy_statements(tables)
    with pytest.raises(RuntimeError, match="after both"):
        await run_unit(tables, mixed)
    assert len(seen) == 1
    assert await stored(tables) == [], "the direct insert was rolled back with the unit"


async def test_a_constraint_violation_reads_as_sqlalchemys_and_leaves_nothing(
    tables: Database,
) -> None:
    await run_unit(tables, lambda: restock({"i2"}))

    def twice() -> Plan[None]:
        yield Insert([(items, [item(4)])])
        yield Insert([(items, [item(2)])])

    with pytest.raises(IntegrityError) as raised:
        await run_unit(tables, twice)
    assert isinstance(raised.value.orig.__cause__, asyncpg.UniqueViolationError)
    assert [row[0] for row in await stored(tables)] == ["i2"]
    assert await run_unit(tables, lambda: restock({"i6"})) == ["i6"], "the connection is usable"


async def test_a_connection_killed_under_a_unit_is_dropped_from_the_pool(
    tables: Database,
) -> None:
    """PostgreSQL ends the unit's own connection under a step: the unit fails as SQLAlchemy
    reports a lost connection, and the next units, more than the pool holds, all work."""

    def doomed() -> Plan[None]:
        yield Fetch(select(items.c.id).where(items.c.id == "i1"))
        yield Fetch(select(literal_column("pg_terminate_backend(pg_backend_pid())").label("gone")))

    seen = sqlalchemy_statements(tables)
    with pytest.raises(DBAPIError) as raised:
        await run_unit(tables, doomed)
    assert seen == [], "both steps went to asyncpg"
    assert raised.value.connection_invalidated
    for number in range(2, 24, 2):
        wanted = f"i{number}"
        assert await run_unit(tables, lambda w=wanted: restock({w})) == [wanted]


async def test_a_multi_row_insert_is_one_statement_and_stores_every_value_as_written(
    tables: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = T0.replace(hour=13, microsecond=123456)
    rows = [
        item(1),
        {"id": "i2", "n": 2, "data": None, "at": None},
        {"id": "i3", "n": -3, "data": {"quote": 'it\'s "x"', "list": [1, None]}, "at": later},
        {"id": "i4", "n": 4, "data": [], "at": T0},
    ]
    sent = counted_statements(monkeypatch)

    def insert() -> Plan[None]:
        yield Insert([(items, rows)])

    await run_unit(tables, insert)
    inserts = [(sql, n) for sql, n in sent if sql.startswith("INSERT")]
    assert [n for _, n in inserts] == [1], "one statement, one set of parameters"
    assert "unnest" in inserts[0][0]
    async with tables.read() as conn:
        found = (await conn.execute(select(items).order_by(items.c.id))).all()
    assert [tuple(r) for r in found] == [tuple(row.values()) for row in rows]


async def test_a_duplicate_inside_one_multi_row_insert_leaves_nothing(tables: Database) -> None:
    def twice_in_one() -> Plan[None]:
        yield Insert([(items, [item(1), item(2), item(1)])])

    with pytest.raises(IntegrityError):
        await run_unit(tables, twice_in_one)
    assert await stored(tables) == []


async def test_a_value_too_long_for_its_column_fails_the_insert_and_is_not_cut(
    tables: Database,
) -> None:
    """The arrays are cast without a length (as SQLAlchemy casts a single value): an explicit
    cast to ``VARCHAR(16)`` would cut the value to fit instead of refusing it."""
    too_long = "i" + "9" * 20

    def insert() -> Plan[None]:
        yield Insert([(items, [item(1), {**item(2), "id": too_long}])])

    with pytest.raises(DBAPIError) as raised:
        await run_unit(tables, insert)
    assert isinstance(raised.value.orig.__cause__, asyncpg.StringDataRightTruncationError)
    assert await stored(tables) == []


BY_ID = ByKey(items, "id", ("n", "data", "at"), prefix="k_")


async def test_rows_updated_by_key_go_as_one_statement_with_the_new_rows_merged_in(
    tables: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's shape: new rows of one table and the new states of several rows of
    another, by key, in one statement; every value stored as given, ``None`` included."""
    await run_unit(tables, lambda: plain_insert([item(1), item(2), item(3)]))
    later = T0.replace(hour=14, microsecond=654321)
    changes = [
        {"k_id": "i3", "k_n": 30, "k_data": {"say": 'it\'s "x"'}, "k_at": later},
        {"k_id": "i1", "k_n": -1, "k_data": None, "k_at": None},
    ]
    sent = counted_statements(monkeypatch)

    def unit() -> Plan[None]:
        yield Insert([(others, [{"id": "o1", "n": 7}])])
        yield BY_ID.rows(changes)

    await run_unit(tables, unit)
    assert len(sent) == 1, sent
    assert "unnest" in sent[0][0]
    assert sent[0][0].startswith("WITH"), "the insert is a clause of the update"
    async with tables.read() as conn:
        found = (await conn.execute(select(items).order_by(items.c.id))).all()
        other = (await conn.execute(select(others.c.id, others.c.n))).all()
    assert [tuple(r) for r in found] == [
        ("i1", -1, None, None),
        ("i2", 2, {"n": [2]}, T0),
        ("i3", 30, {"say": 'it\'s "x"'}, later),
    ]
    assert [tuple(r) for r in other] == [("o1", 7)]


async def test_one_key_twice_is_updated_row_by_row_in_order(
    tables: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement would apply one of the two rows, whichever its plan met last: the rows
    go one by one instead, and the later one wins, as it always has."""
    await run_unit(tables, lambda: plain_insert([item(1), item(2)]))
    sent = counted_statements(monkeypatch)
    twice = [
        {"k_id": "i1", "k_n": 10, "k_data": None, "k_at": T0},
        {"k_id": "i2", "k_n": 20, "k_data": None, "k_at": T0},
        {"k_id": "i1", "k_n": 11, "k_data": None, "k_at": T0},
    ]
    await run_unit(tables, lambda: only(BY_ID.rows(twice)))
    assert [n for sql, n in sent if sql.startswith("UPDATE")] == [3], "per row"
    assert await stored(tables) == [("i1", 11, T0), ("i2", 20, T0)]


async def test_a_value_too_long_fails_the_update_by_key_and_leaves_every_row_as_it_was(
    tables: Database,
) -> None:
    await run_unit(tables, lambda: plain_insert([item(1), item(2)]))
    by_n = ByKey(items, "n", ("id",), prefix="k_")
    renamed = [{"k_n": 1, "k_id": "i1-renamed"}, {"k_n": 2, "k_id": "i" + "9" * 20}]
    with pytest.raises(DBAPIError) as raised:
        await run_unit(tables, lambda: only(by_n.rows(renamed)))
    assert isinstance(raised.value.orig.__cause__, asyncpg.StringDataRightTruncationError)
    assert await stored(tables) == [("i1", 1, T0), ("i2", 2, T0)]


AT_GUARDED = ByKey(items, "id", ("n", "at"), prefix="k_", unless_newer="at")


async def test_an_update_by_key_leaves_a_row_whose_stored_time_is_later(
    tables: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report older than the one known changes nothing, in the one statement as per row."""
    later = T0.replace(hour=13)
    await run_unit(
        tables,
        lambda: plain_insert([item(1), {**item(2), "at": later}, {**item(3), "at": None}]),
    )
    sent = counted_statements(monkeypatch)
    reports = [
        {"k_id": f"i{n}", "k_n": 10 * n, "k_at": T0.replace(hour=12, minute=30)} for n in (1, 2, 3)
    ]
    await run_unit(tables, lambda: only(AT_GUARDED.rows(reports)))
    assert len(sent) == 1
    half_past = T0.replace(hour=12, minute=30)
    assert await stored(tables) == [("i1", 10, half_past), ("i2", 2, later), ("i3", 30, half_past)]


async def test_an_update_by_key_locks_its_rows_in_key_order(tables: Database) -> None:
    """Rows given in reverse key order are still locked in key order, as a statement per row
    sent in key order would: a transaction holding ``i1`` that then changes ``i2`` is not
    stuck behind the update (which waits for ``i1`` holding nothing), and no deadlock ends
    either of them."""
    await run_unit(tables, lambda: plain_insert([item(1), item(2)]))
    reverse = [{"k_id": f"i{n}", "k_n": 10 * n, "k_at": T0} for n in (2, 1)]
    async with tables.transaction() as holder:
        await holder.execute(select(items.c.id).where(items.c.id == "i1").with_for_update())
        update = asyncio.create_task(run_unit(tables, lambda: only(AT_GUARDED.rows(reverse))))
        await asyncio.sleep(0.5)
        assert not update.done(), "the update waits for i1"
        await holder.execute(text("SET LOCAL lock_timeout = '3s'"))
        await holder.execute(items.update().where(items.c.id == "i2").values(n=-2))
    await update
    assert await stored(tables) == [("i1", 10, T0), ("i2", 20, T0)], "the update came last"
