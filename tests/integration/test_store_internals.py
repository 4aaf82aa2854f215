"""The private internals of aiosqlite and SQLAlchemy that the SQLite fast path stands on.

``keyfob.store._sqlite`` and ``keyfob.store.units`` run whole units of work on aiosqlite's
thread and convert values themselves, with parts of both libraries that neither promises to
keep: aiosqlite's ``Connection._execute`` and ``Connection._conn``, SQLAlchemy's
``_generate_cache_key``, the compiled statement's ``positiontup``, ``binds``,
``post_compile_params`` and expanded state, ``construct_params(extracted_parameters=...)``,
``compile(cache_key=...)`` and each type's dialect bind and result processors.
``pyproject.toml`` caps both versions because of them. These tests use every one of them on a
real database opened through ``Database``, and each failure names what changed, so that
raising a cap is a decision made with this file's verdict, not a surprise in production
(several of these changes would not fail anything else: the fast path would quietly fall
back to the slow one, or send values in the wrong order).
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiosqlite
import pytest
import sqlalchemy
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from hand_offs import count_hand_offs, sqlite_with
from keyfob.store._sqlite import prepare_insert, prepare_select, prepare_statement, sqlite_driver
from keyfob.store.engine import Database
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import Execute, Insert, Plan, run_unit

scratch = MetaData()
items = Table(
    "internals_items",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("data", JSON, nullable=True),
    Column("at", UtcDateTime, nullable=True),
)
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
VERSIONS = f"aiosqlite {aiosqlite.__version__}, SQLAlchemy {sqlalchemy.__version__}"


def changed(what: str) -> str:
    return (
        f"{what} [{VERSIONS}]. keyfob.store._sqlite / keyfob.store.units rely on it: adapt "
        "them to the new version, or keep the upper bound in pyproject.toml"
    )


def internal(owner: object, name: str) -> Any:
    """``owner.name``, or a failure saying that the library dropped it."""
    if not hasattr(owner, name):
        kind = owner if isinstance(owner, type) else type(owner)
        pytest.fail(changed(f"{kind.__module__}.{kind.__qualname__}.{name} is gone"))
    return getattr(owner, name)


def item(number: int, at: datetime = T0) -> dict[str, Any]:
    return {"id": f"i{number}", "n": number, "data": {"n": [number], "k": "é"}, "at": at}


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = await sqlite_with(tmp_path, scratch)
    yield database
    await database.dispose()


@asynccontextmanager
async def held(database: Database) -> AsyncIterator[tuple[AsyncConnection, Any]]:
    """The pool's one connection, and the aiosqlite connection under it."""
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = getattr(raw, "driver_connection", None)
        assert isinstance(driver, aiosqlite.Connection), changed(
            "SQLAlchemy's pooled connection no longer hands over aiosqlite's Connection as "
            f"driver_connection (got {type(driver).__qualname__})"
        )
        assert sqlite_driver(raw) is driver, changed(
            "aiosqlite.Connection no longer offers a callable _execute: every unit of work "
            "would silently take the slow path"
        )
        yield conn, driver


@contextmanager
def sent_by_sqlalchemy(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """Every (SQL, parameter tuples) SQLAlchemy hands to sqlite3 while the block runs."""
    seen: list[tuple[str, Any]] = []

    def note(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        seen.append((statement, [tuple(p) for p in parameters] if many else [tuple(parameters)]))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


# -- aiosqlite ----------------------------------------------------------------------------------


async def test_execute_runs_a_function_on_the_driver_thread(database: Database) -> None:
    async with held(database) as (_conn, driver):
        execute = internal(driver, "_execute")

        def where(a: int, b: int) -> tuple[int, int]:
            return threading.get_ident(), a + b

        call = execute(where, 40, 2)
        assert inspect.isawaitable(call), changed(
            f"aiosqlite.Connection._execute(fn, *args) answers a {type(call).__qualname__}, "
            "not something to await"
        )
        first, answer = await call
        second, _ = await execute(where, 0, 0)
        assert answer == 42, changed(
            "aiosqlite.Connection._execute(fn, *args) no longer answers fn(*args)"
        )
        assert first != threading.get_ident(), changed(
            "aiosqlite.Connection._execute no longer runs the function off the event loop"
        )
        assert first == second, changed(
            "aiosqlite.Connection._execute no longer runs every call on one thread"
        )


async def test_execute_runs_queued_calls_in_order_and_passes_errors_back(
    database: Database,
) -> None:
    """``sqlite_turn`` queues units back to back and expects them run in that order; the
    acceptor retries a batch when the database's own error comes back."""
    async with held(database) as (_conn, driver):
        ran: list[int] = []
        calls = [asyncio.ensure_future(driver._execute(ran.append, number)) for number in range(50)]
        await asyncio.gather(*calls)
        assert ran == list(range(50)), changed(
            "aiosqlite.Connection._execute no longer runs queued calls in the order queued"
        )

        sqlite = internal(driver, "_conn")

        def twice() -> None:
            sqlite.execute("INSERT INTO internals_items (id, n) VALUES ('dup', 1)")
            sqlite.execute("INSERT INTO internals_items (id, n) VALUES ('dup', 2)")

        with pytest.raises(sqlite3.IntegrityError):
            await driver._execute(twice)
        await driver._execute(sqlite.rollback)
        assert await driver._execute(lambda: 1) == 1, "the connection still works after an error"


async def test_conn_is_the_sqlite3_connection_under_sqlalchemy(database: Database) -> None:
    """``insert_rows`` and ``fetch_all`` write and read through ``_conn`` inside a transaction
    SQLAlchemy began and commits or rolls back: it must be the same ``sqlite3`` connection,
    usable on the driver's thread."""
    async with held(database) as (conn, driver):
        sqlite = internal(driver, "_conn")
        assert isinstance(sqlite, sqlite3.Connection), changed(
            f"aiosqlite.Connection._conn is a {type(sqlite).__qualname__}, not sqlite3's"
        )
        async with conn.begin():
            await conn.execute(items.insert(), [{"id": "a", "n": 1}])
            await driver._execute(
                sqlite.executemany, "INSERT INTO internals_items (id, n) VALUES (?, ?)", [("b", 2)]
            )
            seen = (await conn.execute(select(items.c.id).order_by(items.c.id))).scalars().all()
            assert seen == ["a", "b"], changed(
                "aiosqlite.Connection._conn is not the connection SQLAlchemy runs statements on"
            )
        async with conn.begin() as transaction:
            await driver._execute(
                sqlite.execute, "INSERT INTO internals_items (id, n) VALUES ('c', 3)"
            )
            await transaction.rollback()
        found = (await conn.execute(select(items.c.id).order_by(items.c.id))).scalars().all()
        await conn.rollback()
    assert found == ["a", "b"], changed(
        "SQLAlchemy's commit and rollback no longer end what was written through "
        "aiosqlite.Connection._conn"
    )


async def test_a_unit_begins_and_ends_its_own_transaction(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``unit_group.run_plans`` sends ``BEGIN IMMEDIATE`` on a checked-out connection and ends with
    sqlite3's ``commit()``: no transaction may be open at checkout (sqlite3's legacy
    transaction control, not its ``autocommit=False`` mode), and none after the unit."""
    async with held(database) as (_conn, driver):
        assert not await driver._execute(lambda: driver._conn.in_transaction), changed(
            "a freshly checked-out aiosqlite connection is already inside a transaction"
        )

    def write(numbers: list[int]) -> Plan[int | None]:
        yield Insert([(items, [item(n) for n in numbers])])
        touched = yield Execute(update(items).where(items.c.n > 1).values(n=items.c.n + 10))
        return cast(int | None, touched)

    calls = count_hand_offs(monkeypatch)
    assert await run_unit(database, lambda: write([1, 2, 3])) == 2
    monkeypatch.undo()
    assert len(calls) == 1, changed(
        f"a unit of work took {len(calls)} hand-offs to aiosqlite's thread, not one: the "
        "one-trip path refused it"
    )
    async with held(database) as (conn, driver):
        assert not await driver._execute(lambda: driver._conn.in_transaction), changed(
            "sqlite3's commit() after BEGIN IMMEDIATE no longer ends the transaction"
        )
        found = (await conn.execute(select(items.c.n).order_by(items.c.id))).scalars().all()
    assert found == [1, 12, 13]


# -- SQLAlchemy ---------------------------------------------------------------------------------


def by_n(n: int) -> Any:
    return select(items.c.id, items.c.at).where(items.c.n == n)


async def test_cache_keys_tell_a_statements_shape_from_its_values() -> None:
    generate = internal(by_n(1), "_generate_cache_key")
    one, two = generate(), by_n(2)._generate_cache_key()
    assert None not in (one, two), changed(
        "ClauseElement._generate_cache_key() answers None for a plain SELECT"
    )
    assert {internal(one, "key"): 1}.get(two.key) == 1, changed(
        "CacheKey.key is no longer one hashable key per statement shape"
    )
    values = [[b.value for b in internal(k, "bindparams")] for k in (one, two)]
    assert values == [[1], [2]], changed(
        f"CacheKey.bindparams no longer carries the statement's own values (got {values})"
    )
    assert by_n(1).where(items.c.id == "x")._generate_cache_key().key != one.key


async def test_compiled_positions_and_values_taken_from_another_statement(
    database: Database,
) -> None:
    """``_compile`` compiles a shape once (with its cache key) and binds later statements of
    that shape through ``construct_params(extracted_parameters=...)`` in ``positiontup`` order."""
    async with held(database) as (conn, _driver):
        statement = by_n(1).where(items.c.id == "i1")
        key = statement._generate_cache_key()
        compiled = statement.compile(dialect=conn.dialect, cache_key=key)
        assert isinstance(compiled, SQLCompiler)
        order = internal(compiled, "positiontup")
        assert len(order or ()) == str(compiled).count("?") == 2, changed(
            f"the compiled SQLite statement's positiontup is {order!r} for {str(compiled)!r}, "
            "not one bind name per '?' in order"
        )
        binds = internal(compiled, "binds")
        assert all(isinstance(binds[name], BindParameter) for name in order), changed(
            "SQLCompiler.binds no longer maps positiontup's names to their BindParameter"
        )
        other = by_n(7).where(items.c.id == "i7")._generate_cache_key()
        values = compiled.construct_params(None, extracted_parameters=other.bindparams)
        assert [values[name] for name in order] == [7, "i7"], changed(
            "construct_params(extracted_parameters=...) no longer takes the values of another "
            "statement of the same shape (compiled with cache_key=...)"
        )
        bound = [prepare_select(by_n(n).where(items.c.id == f"i{n}"), conn.dialect) for n in (1, 3)]
        found = [None if b is None else b.parameters for b in bound]
        assert found == [(1, "i1"), (3, "i3")], changed(
            f"the fast path binds {found!r} for two statements of one shape, "
            "not (1, 'i1') then (3, 'i3')"
        )


async def test_expanded_in_lists_and_per_row_statements(database: Database) -> None:
    async with held(database) as (conn, _driver):
        ats = bindparam("ats", expanding=True)
        statement = select(items.c.id).where(items.c.at.in_(ats), items.c.n > 0)
        compiled = statement.compile(dialect=conn.dialect)
        pending = internal(compiled, "post_compile_params")
        assert [b.key for b in pending] == ["ats"], changed(
            "SQLCompiler.post_compile_params no longer lists an expanding IN parameter"
        )
        values = compiled.construct_params({"ats": [T0, T0 + timedelta(hours=1)]})
        state = internal(compiled, "construct_expanded_state")(values)
        names = list(state.positiontup or ())
        assert len(names) == state.statement.count("?") == 3, changed(
            f"the expanded state's positiontup is {names!r} for {state.statement!r}"
        )
        convert = state.processors.get(names[0])
        stored = None if convert is None else convert(state.parameters[names[0]])
        assert str(stored).startswith("2026-11-26 12:00:00"), changed(
            "ExpandedState.processors no longer holds the bind processor of each expanded IN value"
        )

        per_row = (
            update(items).where(items.c.id == bindparam("r_id")).values(n=bindparam("r_n"), at=T0)
        )
        compiled = per_row.compile(dialect=conn.dialect)
        binds = {name: compiled.binds[name] for name in compiled.positiontup or ()}
        own = [b for b in binds.values() if not b.required and b.value is not None]
        assert [b.effective_value for b in own] == [T0], changed(
            "a value written into an UPDATE (.values(at=T0)) is no longer a BindParameter with "
            "required=False and effective_value"
        )
        assert all(binds[name].required for name in ("r_id", "r_n")), changed(
            "bindparam('name') without a value is no longer required=True"
        )
        assert compiled.string == str(compiled)


async def test_the_fast_path_sends_what_sqlalchemy_would(database: Database) -> None:
    """Same SQL, same converted parameters, same rows read back: if SQLAlchemy changed how it
    orders or converts values, the fast path and ``conn.execute`` would disagree here."""
    # No JSON None here: the fast path writes SQL NULL where SQLAlchemy writes JSON 'null'
    # (both read back as None). A None timestamp is the same either way.
    rows = [item(1), item(2, T0 + timedelta(minutes=1)), {**item(3), "at": None}]
    later = T0 + timedelta(days=1)
    changes = [{"r_id": "i1", "r_n": 10, "r_data": {"x": 1}}, {"r_id": "i3", "r_n": 30}]
    per_row = (
        update(items)
        .where(items.c.id == bindparam("r_id"))
        .values(n=bindparam("r_n"), data=bindparam("r_data", value={"own": 1}), at=later)
    )
    once = update(items).where(items.c.id.in_(["i1", "i2"])).values(at=later)
    lookup = select(items).where(items.c.at.in_(bindparam("ats", expanding=True)))
    ats = {"ats": [T0, later]}

    async with held(database) as (conn, driver):
        dialect = conn.dialect
        ours: list[Any] = [
            prepare_insert(items, rows, dialect),
            prepare_statement(per_row, dialect, changes),
            prepare_statement(once, dialect),
        ]
        for found in ours:
            assert found is not None, changed("a plain statement no longer takes the fast path")
        with sent_by_sqlalchemy(database) as theirs:
            async with conn.begin():
                await conn.execute(items.insert(), rows)
                await conn.execute(per_row, changes)
                await conn.execute(once)
                read = (await conn.execute(lookup, ats)).all()
        prepared = prepare_select(lookup, dialect, ats)
        assert prepared is not None, changed("an IN-list SELECT no longer takes the fast path")
        ours.append((prepared.sql, [prepared.parameters]))
        assert len(theirs) == len(ours)
        for mine, their in zip(ours, theirs, strict=True):
            assert mine == their, changed(
                f"the fast path would send {mine!r} where SQLAlchemy sends {their!r}"
            )
        raw = await driver._execute(
            lambda: driver._conn.execute(prepared.sql, prepared.parameters).fetchall()
        )
        back = sorted(tuple(row) for row in prepared.rows(raw))
        assert back == sorted(tuple(row) for row in read), changed(
            "the result processors (JSON, UTC timestamps) no longer read back what SQLAlchemy "
            "reads back"
        )
    assert back == [
        ("i1", 10, {"x": 1}, later),
        ("i2", 2, {"n": [2], "k": "é"}, later),
        ("i3", 30, {"own": 1}, later),
    ]
