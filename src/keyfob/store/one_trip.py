"""A unit of work written as ordinary async SQLAlchemy Core, run on SQLite in one hand-off.

``units`` turns a unit written as a generator of steps into one trip to aiosqlite's thread.
The delivery worker's units (claim, record, give back, renew leases, expire) are written as
plain ``async def f(conn)`` on SQLAlchemy Core, shared with PostgreSQL, and each of their
statements costs several hand-offs between the event loop and the driver's thread. In the
worker the event loop is busy with hundreds of POSTs, so each hand-off waits for its next turn,
and the transaction, with SQLite's one write lock (``store.writer_lock``), stayed open for
milliseconds while ``serve`` waited for it.

``run_in_one_trip`` runs such a function whole on the driver's thread instead: it gets a
stand-in connection whose ``execute`` runs the statement at once, through a synchronous
SQLAlchemy connection on the same ``sqlite3`` connection (the same compilation, bind and result
processing), so the coroutine never waits for anything and is driven to its end in one go,
between ``BEGIN IMMEDIATE`` and ``COMMIT``. A function that awaits anything else (it would
suspend, or asyncio finds no running loop on that thread) is rolled back and run again the
ordinary way; on PostgreSQL it always runs the
ordinary way, in ``Database.transaction()``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from keyfob.store._sqlite import sqlite_driver
from keyfob.store.engine import Database, begin_immediate, json_text

T = TypeVar("T")
_NOT_SYNCED = text("SET LOCAL synchronous_commit TO OFF")
Work = Callable[[AsyncConnection], Awaitable[T]]


class _Suspended(Exception):
    """The function awaited something other than a statement: it cannot run in one trip."""


class _OnThread:
    """Stands in for ``AsyncConnection``: each statement runs now, on this thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(
        self,
        statement: Executable,
        parameters: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    ) -> CursorResult[Any]:
        return self._conn.execute(statement, parameters)


class _SyncEngines:
    """A synchronous engine over the one ``sqlite3`` connection the async engine holds.

    Rebuilt when that connection is (after it was invalidated and opened anew).
    """

    def __init__(self) -> None:
        self._raw: object | None = None
        self._engine: Engine | None = None

    def for_connection(self, raw: Any) -> Engine:
        if self._engine is None or self._raw is not raw:
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._engine = create_engine(
                "sqlite://",
                creator=lambda: raw,
                poolclass=StaticPool,
                pool_reset_on_return=None,
                json_serializer=json_text,
                json_deserializer=orjson.loads,
            )
            self._raw = raw
        return self._engine


_engines: weakref.WeakKeyDictionary[Database, _SyncEngines] = weakref.WeakKeyDictionary()


def _roll_back(conn: Connection, raw: Any) -> None:
    conn.rollback()
    if raw.in_transaction:
        raw.rollback()


def _drive(conn: Connection, raw: Any, work: Work[T]) -> T:
    """``work`` to its end on this thread, committed; rolled back if it fails or suspends."""
    coroutine = cast(Coroutine[Any, Any, T], work(cast(AsyncConnection, _OnThread(conn))))
    try:
        coroutine.send(None)
    except StopIteration as done:
        conn.commit()
        if raw.in_transaction:  # begun here, and no statement made SQLAlchemy's
            raw.commit()
        return cast(T, done.value)
    except RuntimeError as error:
        _roll_back(conn, raw)
        if "no running event loop" in str(error):  # it awaited asyncio itself
            raise _Suspended(work) from error
        raise
    except BaseException:
        _roll_back(conn, raw)
        raise
    coroutine.close()
    _roll_back(conn, raw)
    raise _Suspended(work)


def _run_here(
    raw: Any, engine: Engine, database: Database, work: Work[T], synced: bool, flush_read: bool
) -> T:
    """On the driver's thread: the whole function as one transaction."""
    relaxed = not synced and database.sqlite_synchronous != "NORMAL"
    if relaxed:
        raw.execute("PRAGMA synchronous=NORMAL")
    try:  # the connection goes back to its own level whatever happens below
        begin_immediate(raw, database.writer_lock, database.timeouts.busy)
        try:
            with engine.connect() as conn:
                result = _drive(conn, raw, work)
        finally:
            if database.writer_lock is not None:
                database.writer_lock.release()
    finally:
        if relaxed:
            raw.execute(f"PRAGMA synchronous={database.sqlite_synchronous}")
    if flush_read and database.wal_flush is not None:
        database.wal_flush.flush()  # once the lock is free (``store.wal_sync``)
    return result


async def run_in_one_trip(
    database: Database, work: Work[T], *, synced: bool = True, flush_read: bool = False
) -> T:
    """``await work(conn)`` as one committed transaction (see the module's docstring).

    ``synced=False``: this commit does not wait for the disk: ``synchronous=NORMAL`` for it
    alone on SQLite, ``synchronous_commit`` off for this transaction on PostgreSQL. For work
    whose loss in a power cut (or a crash of the database server) costs nothing but a little
    time, such as a delivery lease: the rows stay pending and are claimed again. A later
    synced commit syncs it too (the log is written in order, on both engines).

    ``flush_read``: what the work read is on disk before it returns, for work whose caller
    acts on it outside keyfob (a claim before its POSTs). Another process may have committed
    those rows a moment ago and still be flushing them (``store.wal_sync``). On PostgreSQL a
    committed row is on disk before anyone else can read it.
    """
    if database.sqlite:
        async with database.engine.connect() as conn:
            driver = sqlite_driver(await conn.get_raw_connection())
            if driver is not None:
                raw = driver._conn
                engine = _engines.setdefault(database, _SyncEngines()).for_connection(raw)
                try:
                    result: T = await driver._execute(
                        _run_here, raw, engine, database, work, synced, flush_read
                    )
                    return result
                except _Suspended:
                    pass
    async with database.transaction() as conn:
        if not synced:
            await conn.execute(_NOT_SYNCED)
        return await work(conn)
