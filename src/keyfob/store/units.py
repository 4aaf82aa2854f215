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
* on PostgreSQL, on a connection in autocommit that opens a transaction only when the plan
  needs one: plain reads run as they come, and writes at the end of the plan go as one
  statement (``lazy_begin``); each step is handed to asyncpg directly when its parameters are
  plain (``_asyncpg``).

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

from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store._asyncpg import DirectPg
from keyfob.store._sqlite import sqlite_driver
from keyfob.store.engine import Database
from keyfob.store.lazy_begin import run_lazily
from keyfob.store.pg_steps import run_one_step
from keyfob.store.plans import (
    ByKey,
    Execute,
    Fetch,
    Insert,
    NotOneTrip,
    Plan,
    Ready,
    Statements,
    Step,
    only,
    ready,
    steps,
)
from keyfob.store.unit_group import UnitGroups, run_plans, unwrap

__all__ = [
    "ByKey",
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
            answer = await run_one_step(conn, direct, step)
    except StopIteration as done:
        result: T = done.value
        return result


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
    if database.engine.dialect.driver == "asyncpg":
        async with database.autocommit() as conn:
            direct = await DirectPg.of(conn, autocommit=True)
            if direct is not None:
                return await run_lazily(conn, direct, make_plan())
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
