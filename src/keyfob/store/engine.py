"""Engines and the unit of work: the same code on SQLite and on PostgreSQL.

SQLite (embedded default) runs in WAL mode behind a single connection per process, so a
process has one writer; the processes sharing the file (``serve`` and its delivery child) take
turns through ``store.writer_lock``, each write transaction beginning ``IMMEDIATE``. PostgreSQL
gets a pool. Queries use SQLAlchemy Core on the tables the domains declare (``store.schema``),
not ORM sessions, because the session costs about three times a raw insert on the hot path.

Services take an ``AsyncConnection`` first and never commit: ``Database.transaction()`` is the
unit of work and commits when its block ends without error.

Every database call is bounded (``Timeouts``): on PostgreSQL a connect time-out, a time-out on
each statement (COMMIT included) and on waiting for a pooled connection; on SQLite the busy
time-out. A database that stops answering (a black hole) then fails a request within seconds
instead of holding it, and its connections, for as long as the fault lasts. ``Database.outage``
turns those failures into one log line per outage and the API's 503 (``store.outage``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from sqlalchemy import (
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from keyfob.store._sqlite import sqlite_driver
from keyfob.store.checkpoints import Checkpointer
from keyfob.store.nudge_local import LocalNudges
from keyfob.store.outage import Outage
from keyfob.store.wal_sync import WalFlush
from keyfob.store.writer_lock import WriterLock, lock_path


@dataclass(frozen=True)
class Timeouts:
    """Seconds; ``config.Settings`` carries the operator's values (``db_*_timeout_s``)."""

    connect: float = 5.0
    """PostgreSQL: opening a connection (TCP, TLS, authentication)."""
    statement: float = 10.0
    """PostgreSQL: any one statement, COMMIT included (asyncpg's ``command_timeout``)."""
    pool: float = 5.0
    """PostgreSQL: waiting for a free pooled connection."""
    busy: float = 5.0
    """SQLite: waiting for another process's write lock (``busy_timeout``)."""


def async_url(url: str) -> str:
    """Accept the plain SQLAlchemy URL forms users know and pick the async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names; None for another database or SQLite in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return str(parsed.database)


def _sqlite_pragmas(
    busy_ms: int, synchronous: str, autocheckpoint: bool, dbapi_connection: Any, _record: Any
) -> None:
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"SQLite synchronous must be FULL or NORMAL, not {synchronous!r}")
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    if not autocheckpoint:  # a ``Checkpointer`` thread does it (``store.checkpoints``)
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


SYNCHRONOUS = ("FULL", "NORMAL")
"""SQLite in WAL mode: FULL syncs every commit, so a 202 survives a power loss (decision 32);
NORMAL syncs at checkpoints only (a crash of the process loses nothing, a power loss may lose
the last commits). FULL is the default; ``bench/e2e.py --sync`` prints what it costs."""


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    timeouts: Timeouts = Timeouts(),
    synchronous: str = "FULL",
    autocheckpoint: bool = True,
) -> AsyncEngine:
    if is_sqlite(url):
        # No reset-on-return: every checkout ends in an explicit commit or rollback (by
        # ``transaction()`` or by the connection's own close), and under sqlite3's
        # transaction handling a read opens none, so the pool's extra ROLLBACK would only
        # cost one more hand-off to the driver's thread per unit of work.
        engine = create_async_engine(
            async_url(url),
            json_serializer=json_text,
            json_deserializer=orjson.loads,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_reset_on_return=None,
            connect_args={"timeout": timeouts.busy},
        )
        busy_ms = round(timeouts.busy * 1000)
        pragmas = partial(_sqlite_pragmas, busy_ms, synchronous, autocheckpoint)
        event.listen(engine.sync_engine, "connect", pragmas)
        return engine
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeouts.pool,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": timeouts.connect,
            "command_timeout": timeouts.statement,
            # A transaction whose client vanished (its COMMIT lost in a black-holed link)
            # would keep its row locks on the server for good: SKIP LOCKED would skip those
            # remotes forever and a result for one would wait on the lock. No unit of work
            # idles between statements for anywhere near this long.
            "server_settings": {
                "idle_in_transaction_session_timeout": str(round(timeouts.statement * 2000))
            },
        },
    )


def begin_immediate(sqlite: sqlite3.Connection, lock: WriterLock | None, timeout_s: float) -> None:
    """On the driver's thread: the writer lock, then SQLite's write lock (``BEGIN IMMEDIATE``).

    Taking SQLite's lock at the start also means a transaction that reads before it writes
    never fails at its first write because another process wrote in between.
    """
    if lock is None:
        sqlite.execute("BEGIN IMMEDIATE")
        return
    lock.acquire(timeout_s)
    try:
        sqlite.execute("BEGIN IMMEDIATE")
    except BaseException:
        lock.release()
        raise


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class Database:
    """Owns the engine; hands out units of work."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeouts: Timeouts = Timeouts(),
        retry_after_s: int = 5,
        sqlite_synchronous: str = "FULL",
        checkpoint_every_s: float | None = None,
    ) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        self.timeouts = timeouts
        file = sqlite_file(url)
        self.checkpointer = (
            Checkpointer(file, checkpoint_every_s, WriterLock(lock_path(file)), timeouts.busy)
            if file is not None and checkpoint_every_s
            else None
        )
        """SQLite on a file, in a long-running process: checkpoints off the commit path."""
        self.engine = create_engine(
            url,
            pool_size=pool_size,
            timeouts=timeouts,
            synchronous=sqlite_synchronous,
            autocheckpoint=self.checkpointer is None,
        )
        if self.checkpointer is not None:
            self.checkpointer.start()
        self.outage = Outage(retry_after_s=retry_after_s)
        self.sqlite_synchronous = sqlite_synchronous
        self.writer_lock = WriterLock(lock_path(file)) if file is not None else None
        """SQLite on a file: taken around every write transaction (``store.writer_lock``)."""
        self.file = file
        """SQLite's file, None for SQLite in memory or another database."""
        self.wal_flush = (
            WalFlush(file) if file is not None and sqlite_synchronous == "FULL" else None
        )
        """SQLite on a file with ``FULL``: units of work flush the log once the write lock is
        free (``store.wal_sync``)."""
        self.local_nudges = LocalNudges(file) if file is not None else None
        """SQLite on a file: nudges to this file's other processes (``store.nudge_local``)."""
        self.under_way: set[asyncio.Task[None]] = set()
        """Work on the connections that outlives its callers (a runner of ``store.unit_group``
        whose callers stopped waiting): the engine is disposed of once it has ended."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Commit when the block ends, roll back when it raises."""
        if self.writer_lock is None:
            async with self.engine.begin() as conn:
                yield conn
        else:
            async with self.engine.connect() as conn, self._writing(conn), conn.begin():
                yield conn
        self.outage.reached()

    @asynccontextmanager
    async def _writing(self, conn: AsyncConnection) -> AsyncIterator[None]:
        """The writer lock, then ``BEGIN IMMEDIATE``, on the driver's thread; the lock is let
        go once the block (and so its COMMIT or ROLLBACK) has ended."""
        lock = self.writer_lock
        assert lock is not None
        driver = sqlite_driver(await conn.get_raw_connection())
        assert driver is not None
        begin = asyncio.ensure_future(
            driver._execute(begin_immediate, driver._conn, lock, self.timeouts.busy)
        )
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            # The driver's thread may still take the lock and begin: undo both, then go.
            with contextlib.suppress(Exception):
                await begin
                await driver._execute(driver._conn.rollback)
            lock.release()
            raise
        try:
            yield
        finally:
            lock.release()

    async def flush_read(self) -> None:
        """What was read is on disk before it leaves keyfob (``store.wal_sync``): rows another
        process committed a moment ago may still be on their way."""
        if self.wal_flush is not None:
            await asyncio.to_thread(self.wal_flush.flush)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement is a transaction of its own, with no ``BEGIN``
        or ``COMMIT`` round trip: for work whose statements need nothing in common (reads, and
        writes that are each one statement). PostgreSQL only: SQLite's units have their own
        way to make one trip (``store.one_trip``)."""
        assert not self.sqlite
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
        self.outage.reached()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only; whatever it started is rolled back."""
        async with self.engine.connect() as conn:
            yield conn
        self.outage.reached()

    async def dispose(self) -> None:
        if self.under_way:
            await asyncio.wait(self.under_way)
        await self.engine.dispose()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        if self.writer_lock is not None:
            self.writer_lock.close()
        if self.local_nudges is not None:
            self.local_nudges.close()
