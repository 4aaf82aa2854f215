"""A unit of work written once, as a generator of database steps, run the cheapest way.

A plan yields ``Fetch`` (gets the rows back), ``Insert`` and ``Execute`` steps and returns its
result; between steps it is plain Python. ``run_unit`` runs a plan as one transaction:

* on SQLite, the whole plan (its Python included) in one hand-off to aiosqlite's thread,
  between ``BEGIN IMMEDIATE`` and ``COMMIT`` on the driver's own connection: one trip per unit
  of work instead of several per statement (see ``_sqlite``). ``IMMEDIATE`` takes the write lock
  at the start, so another process's writer makes it wait (busy timeout), never fail midway.
  With ``synchronous=FULL`` the wait for the disk comes after the lock is free, still before
  the unit returns (``wal_sync``);
* elsewhere (PostgreSQL), each step awaited in turn inside ``Database.transaction()``, handed
  to asyncpg directly when its parameters are plain (``_asyncpg``).

Either way the plan sees the same rows and writes the same values; an exception rolls the
whole unit back and reaches the caller.

A write whose rows are known before the transaction (the delivery worker's outcomes) can be
made ``ready`` first, on the caller's thread: its SQL and converted parameters are worked out
there, so SQLite's write lock is held only while the statement runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Delete, Update

from keyfob.store._asyncpg import DirectPg, array_insert
from keyfob.store._sqlite import (
    Rows,
    fetch_all,
    insert_rows,
    prepare_insert,
    prepare_select,
    prepare_statement,
    sqlite_driver,
)
from keyfob.store.engine import Database, begin_immediate
from keyfob.store.wal_sync import WalFlush
from keyfob.store.writer_lock import WriterLock

T = TypeVar("T")


@dataclass(frozen=True)
class Fetch:
    """Send back every row of the statement (attribute access by column name).

    A statement built once, at import, takes its values as ``parameters`` (``bindparam``
    names); building a statement costs more than running one of these look-ups.
    """

    statement: Select[Any]
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Insert:
    """Multi-row inserts, table by table, in order."""

    work: Sequence[tuple[Table, Rows]]


@dataclass(frozen=True)
class Execute:
    """An UPDATE or DELETE, once or once per row of ``rows``.

    Run once, it sends back how many rows it touched; per row, ``None`` (asyncpg does not
    count an ``executemany``).
    """

    statement: Update | Delete
    rows: Sequence[Mapping[str, Any]] | None = None


Statements = list[tuple[str, list[tuple[Any, ...]]]]
"""SQL and its parameter tuples, ready for ``sqlite3``'s ``executemany``."""


@dataclass(frozen=True)
class Ready:
    """A write step with its SQLite statements worked out ahead (``ready``).

    ``sqlite`` is the SQL and parameter tuples to run; ``None`` elsewhere, or when the step
    needs the ordinary path: the step then runs as it would have.
    """

    step: Insert | Execute
    sqlite: Statements | None


Step = Fetch | Insert | Execute | Ready
Plan = Generator[Step, Any, T]


def ready(database: Database, step: Insert | Execute) -> Ready:
    """``step`` converted now, before any transaction: the rows' values through their types,
    the SQL compiled (or found compiled). Costs the same as at run time, but outside the
    write lock."""
    if not database.sqlite:
        return Ready(step, None)
    return Ready(step, _statements(step, database.engine.dialect))


def _statements(step: Insert | Execute, dialect: Dialect) -> Statements | None:
    """A write step's SQL and parameter tuples for ``sqlite3``; ``None`` if it needs more
    than plain parameters (it then takes the ordinary path)."""
    if isinstance(step, Insert):
        return _inserts(step, dialect, prepare_insert)
    found: Statements = []
    if step.rows is None or step.rows:  # per row with no rows: nothing to do
        statement = prepare_statement(step.statement, dialect, step.rows)
        if statement is None:
            return None
        found.append(statement)
    return found


def _write(sqlite: Any, step: Insert | Execute, statements: Statements) -> int | None:
    """Run a write step's statements; an ``Execute`` run once answers how many rows it
    touched, every other step ``None``."""
    count = 0
    for sql, parameters in statements:
        count = sqlite.executemany(sql, parameters).rowcount
    return count if isinstance(step, Execute) and step.rows is None else None


def steps(work: Sequence[Step]) -> Plan[None]:
    """A plan of writes known in advance, run in order."""
    for step in work:  # noqa: UP028 - ``yield from`` a list would refuse the steps' answers
        yield step


def only(step: Step) -> Plan[Any]:
    """A plan of one step, answering what the step sends back."""
    answer = yield step
    return answer


class NotOneTrip(Exception):
    """A step needs more than plain parameters: the unit runs step by step instead."""


async def run_steps(conn: AsyncConnection, plan: Plan[T]) -> T:
    """Each step awaited on ``conn``, in the caller's transaction; on PostgreSQL straight to
    asyncpg where the step's parameters are plain (``_asyncpg``)."""
    direct = await DirectPg.of(conn)
    answer: Any = None
    try:
        while True:
            step = plan.send(answer)
            if isinstance(step, Ready):
                step = step.step
            if direct is not None:
                done, answer = await _direct_step(direct, conn.dialect, step)
                if done:
                    continue
            if isinstance(step, Fetch):
                answer = await fetch_all(conn, step.statement, step.parameters)
            elif isinstance(step, Insert):
                await insert_rows(conn, step.work)
                answer = None
            elif step.rows is not None:
                if step.rows:
                    await conn.execute(step.statement, list(step.rows))
                answer = None
            else:
                answer = int((await conn.execute(step.statement)).rowcount or 0)
    except StopIteration as done:
        result: T = done.value
        return result


async def _direct_step(
    direct: DirectPg, dialect: Dialect, step: Fetch | Insert | Execute
) -> tuple[bool, Any]:
    """``(True, answer)`` once ``step`` has run through asyncpg; ``(False, None)`` when it
    needs SQLAlchemy's path."""
    if isinstance(step, Fetch):
        prepared = prepare_select(step.statement, dialect, step.parameters)
        if prepared is None:
            return False, None
        return True, await direct.fetch(prepared)
    if isinstance(step, Insert):
        arrays = _inserts(step, dialect, array_insert)
        if arrays is None:
            return False, None
        for sql, columns in arrays:
            await direct.execute(sql, columns)
        return True, None
    statements = _statements(step, dialect)
    if statements is None:
        return False, None
    if isinstance(step, Execute) and step.rows is None:
        (sql, (parameters,)) = statements[0]
        return True, await direct.execute(sql, parameters)
    for sql, rows in statements:
        await direct.many(sql, rows)
    return True, None


def _inserts(
    step: Insert, dialect: Dialect, prepare: Callable[[Table, Rows, Dialect], Any]
) -> Statements | None:
    """Each table's rows as ``prepare`` words them: rows of parameters (``prepare_insert``)
    or one statement over arrays (``_asyncpg.array_insert``); ``None`` as ``_statements``."""
    found: Statements = []
    for table, rows in step.work:
        if rows:
            insert = prepare(table, rows, dialect)
            if insert is None:
                return None
            found.append(insert)
    return found


def _run_here(
    sqlite: Any,
    dialect: Dialect,
    lock: WriterLock | None,
    busy_s: float,
    plan: Plan[T],
    flush: WalFlush | None = None,
) -> T:
    """The plan on the driver's thread, on its ``sqlite3`` connection, as one transaction.

    The transaction begins with the plan's first step: a plan that ends without one (it found
    nothing to do) costs no ``BEGIN`` and no ``COMMIT``. With a writer lock it begins by
    taking it (``store.writer_lock``) and lets it go once the transaction has ended.
    ``flush``: the commit does not wait for the disk; the log is flushed once the lock is free
    (``store.wal_sync``).
    """
    if flush is None:
        return _transact(sqlite, dialect, lock, busy_s, plan)[0]
    sqlite.execute("PRAGMA synchronous=NORMAL")
    try:
        result, committed = _transact(sqlite, dialect, lock, busy_s, plan)
    finally:
        sqlite.execute(f"PRAGMA synchronous={flush.LEVEL}")
    if committed:
        flush.flush()
    return result


def _transact(
    sqlite: Any, dialect: Dialect, lock: WriterLock | None, busy_s: float, plan: Plan[T]
) -> tuple[T, bool]:
    """``_run_here``'s transaction: the plan's result, and whether it committed anything."""
    begun = False
    try:
        answer: Any = None
        while True:
            step = plan.send(answer)
            answer = None
            if not begun:
                begin_immediate(sqlite, lock, busy_s)
                begun = True
            if isinstance(step, Ready):
                if step.sqlite is not None:
                    answer = _write(sqlite, step.step, step.sqlite)
                    continue
                step = step.step
            if isinstance(step, Fetch):
                prepared = prepare_select(step.statement, dialect, step.parameters)
                if prepared is None:
                    raise NotOneTrip(step)
                answer = prepared.rows(sqlite.execute(prepared.sql, prepared.parameters).fetchall())
            else:
                statements = _statements(step, dialect)
                if statements is None:
                    raise NotOneTrip(step)
                answer = _write(sqlite, step, statements)
    except StopIteration as done:
        if begun:
            try:
                sqlite.commit()
            except BaseException:
                sqlite.rollback()
                raise
            finally:
                if lock is not None:
                    lock.release()
        result: T = done.value
        return result, begun
    except BaseException:
        if begun:
            try:
                sqlite.rollback()
            finally:
                if lock is not None:
                    lock.release()
        raise


async def run_unit(database: Database, make_plan: Callable[[], Plan[T]]) -> T:
    """``make_plan()`` run as one committed transaction (see the module's docstring)."""
    if database.sqlite:
        async with database.engine.connect() as conn:
            driver = sqlite_driver(await conn.get_raw_connection())
            if driver is not None:
                try:
                    result: T = await driver._execute(
                        _run_here,
                        driver._conn,
                        conn.dialect,
                        database.writer_lock,
                        database.timeouts.busy,
                        make_plan(),
                        database.wal_flush,
                    )
                    return result
                except NotOneTrip:
                    pass
    async with database.transaction() as conn:
        return await run_steps(conn, make_plan())


Submit = Callable[[Plan[T]], "asyncio.Future[T]"]


@asynccontextmanager
async def sqlite_turn(database: Database) -> AsyncIterator[Submit[Any] | None]:
    """Hold SQLite's one connection and queue several units on it back to back.

    Awaiting one unit at a time leaves the driver's thread idle from the moment a unit ends
    until the event loop has answered it and handed over the next. Units submitted through
    the yielded function wait in the driver's queue instead, each still its own transaction,
    run in the order submitted. Every submitted unit has ended when the block exits, before
    the connection goes back to the pool. ``None`` when the database is not SQLite (or the
    driver offers no thread hand-off): the caller uses ``run_unit``.
    """
    if not database.sqlite:
        yield None
        return
    async with database.engine.connect() as conn:
        driver = sqlite_driver(await conn.get_raw_connection())
        if driver is None:
            yield None
            return
        submitted: list[asyncio.Future[Any]] = []
        lock, busy_s = database.writer_lock, database.timeouts.busy
        flush = database.wal_flush

        def submit(plan: Plan[Any]) -> asyncio.Future[Any]:
            call: Awaitable[Any] = driver._execute(
                _run_here, driver._conn, conn.dialect, lock, busy_s, plan, flush
            )
            future = asyncio.ensure_future(call)
            submitted.append(future)
            return future

        try:
            yield submit
        finally:
            if submitted:
                await asyncio.gather(*submitted, return_exceptions=True)
