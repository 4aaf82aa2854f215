"""A unit of work written once, as a generator of database steps, run the cheapest way.

A plan yields ``Fetch`` (gets the rows back), ``Insert`` and ``Execute`` steps and returns its
result; between steps it is plain Python (the steps: ``store.plans``). ``run_unit`` runs a plan
as one transaction:

* on SQLite, the whole plan (its Python included) on aiosqlite's thread, between ``BEGIN
  IMMEDIATE`` and ``COMMIT`` on the driver's own connection: one trip per unit of work instead
  of several per statement (see ``_sqlite``). ``IMMEDIATE`` takes the write lock at the start,
  so another process's writer makes it wait (busy timeout), never fail midway. Plans that wait
  for the connection at the same moment share one transaction, each after the first behind a
  savepoint (``store.unit_group``). With ``synchronous=FULL`` the wait for the disk comes after
  the lock is free, still before the unit returns (``wal_sync``);
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
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store._asyncpg import DirectPg, array_insert
from keyfob.store._sqlite import fetch_all, insert_rows, prepare_select, sqlite_driver
from keyfob.store.engine import Database
from keyfob.store.plans import (
    Execute,
    Fetch,
    Insert,
    NotOneTrip,
    Plan,
    Ready,
    Statements,
    Step,
    inserts,
    only,
    ready,
    statements,
    steps,
)
from keyfob.store.unit_group import UnitGroups, run_plans, unwrap

__all__ = [
    "Execute",
    "Fetch",
    "Insert",
    "NotOneTrip",
    "Plan",
    "Ready",
    "Statements",
    "Step",
    "Submit",
    "only",
    "ready",
    "run_steps",
    "run_unit",
    "sqlite_turn",
    "steps",
]

T = TypeVar("T")


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
        arrays = inserts(step, dialect, array_insert)
        if arrays is None:
            return False, None
        for sql, columns in arrays:
            await direct.execute(sql, columns)
        return True, None
    writes = statements(step, dialect)
    if writes is None:
        return False, None
    if isinstance(step, Execute) and step.rows is None:
        (sql, (parameters,)) = writes[0]
        return True, await direct.execute(sql, parameters)
    for sql, rows in writes:
        await direct.many(sql, rows)
    return True, None


_groups: weakref.WeakKeyDictionary[Database, UnitGroups] = weakref.WeakKeyDictionary()


async def run_unit(database: Database, make_plan: Callable[[], Plan[T]]) -> T:
    """``make_plan()`` run as one committed transaction (see the module's docstring)."""
    if database.sqlite:
        groups = _groups.get(database)
        if groups is None:
            groups = _groups[database] = UnitGroups(database)
        try:
            result: T = await groups.submit(make_plan())
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
        flush, dialect = database.wal_flush, conn.dialect

        async def alone(plan: Plan[Any]) -> Any:
            outcomes = await driver._execute(
                run_plans, driver._conn, dialect, lock, busy_s, [plan], flush
            )
            return unwrap(outcomes[0])

        def submit(plan: Plan[Any]) -> asyncio.Future[Any]:
            future = asyncio.ensure_future(alone(plan))
            submitted.append(future)
            return future

        try:
            yield submit
        finally:
            if submitted:
                await asyncio.gather(*submitted, return_exceptions=True)
