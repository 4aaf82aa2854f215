"""A unit's statements handed to asyncpg directly, on PostgreSQL, inside SQLAlchemy's transaction.

Through ``conn.execute`` every statement pays SQLAlchemy's execution context: for a multi-row
insert, its parameters are worked out row by row in Python (``construct_params`` and each
column's processor, per row), then handed to the adapter, which hands them to asyncpg. In the
dispatcher that was a fifth of the process's samples under load. ``_sqlite`` already works out
a statement's SQL once per shape and converts the rows column by column; the same preparation,
compiled for the asyncpg dialect (``$n`` parameters with their casts, the same processors), goes
to asyncpg's ``fetch``, ``execute`` and ``executemany`` here.

A multi-row insert goes as one statement over arrays, ``INSERT ... SELECT * FROM unnest($1::
type[], ...)``, one array per column, instead of ``executemany``: PostgreSQL then plans and runs
one statement for the batch, where each row of ``executemany`` was a statement of its own (an
executor started and stopped, a protocol exchange). A unit of the dispatcher inserts dozens of
events and notifications; a worker's record, an attempt per POST. The SQL does not depend on the
number of rows, so asyncpg prepares it once.

The unit still runs inside ``Database.transaction()``: SQLAlchemy's adapter is asked to begin
its transaction first (asyncpg itself would run each statement on its own), and commits or
rolls it back as before. A statement that needs more than plain parameters takes the ordinary
path, in the same transaction. A failure reaches the caller as SQLAlchemy would raise it (the
same ``sqlalchemy.exc`` classes), and one that means the connection is gone invalidates it, as
SQLAlchemy does for its own statements, so that the pool drops it.

These are the adapter's private parts (``_connection``, ``_transaction``,
``_start_transaction``); ``DirectPg.of`` answers ``None`` when they are not there, and every
statement then goes through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from keyfob.store._sqlite import PreparedSelect, Processor, Rows, binder, insert_columns
from keyfob.store.outage import unreachable
from keyfob.store.plans import ByKey

T = TypeVar("T")

_unnests: dict[tuple[str, tuple[str, ...]], str] = {}
_updates: dict[ByKey, tuple[str, list[Processor]] | None] = {}
"""Each ``ByKey``'s SQL and its columns' processors, worked out on first use (one dialect
per process)."""


def array_cast(type_: TypeEngine[Any], dialect: Dialect) -> str | None:
    """``::TYPE[]``: the cast SQLAlchemy gives one value of ``type_``, for an array of them;
    ``None`` for a type it does not cast.

    That cast has no length (``VARCHAR``, not ``VARCHAR(16)``): an explicit cast to a length
    cuts a longer value to fit, where the column itself refuses it.
    """
    rendered = str(bindparam("v", type_=type_).compile(dialect=dialect))
    _, cast_to, name = rendered.partition("::")
    return f"::{name}[]" if cast_to else None


def array_insert(table: Table, rows: Rows, dialect: Dialect) -> tuple[str, list[Any]] | None:
    """``rows`` as one INSERT over one array per column, bind-processed; ``None`` where
    ``prepare_insert`` would take the ordinary path."""
    found = insert_columns(table, rows, dialect)
    if found is None:
        return None
    _values_sql, names, columns = found
    key = (table.name, tuple(names))
    sql = _unnests.get(key)
    if sql is None:
        quote = dialect.identifier_preparer
        casts = [array_cast(table.c[name].type, dialect) for name in names]
        if None in casts:
            return None
        arrays = ", ".join(f"${n}{cast}" for n, cast in enumerate(casts, start=1))
        listed = ", ".join(quote.format_column(table.c[name]) for name in names)
        # Names and types come from the table's declaration, never from the rows' values.
        sql = _unnests[key] = (
            f"INSERT INTO {quote.format_table(table)} ({listed}) "  # noqa: S608
            f"SELECT * FROM unnest({arrays})"
        )
    return sql, columns


def array_update(
    by_key: ByKey, rows: Sequence[Mapping[str, Any]], dialect: Dialect
) -> tuple[str, list[Any]] | None:
    """Several rows of a ``ByKey`` update as one statement joined to one array per column,
    bind-processed; ``None`` for fewer than two rows, for two rows with one key (one statement
    would apply only one of them) or for a type without a cast: those go row by row."""
    if len(rows) < 2:
        return None
    names = (by_key.key, *by_key.columns)
    values = [[row[by_key.prefix + name] for row in rows] for name in names]
    if len(set(values[0])) != len(rows):
        return None
    if by_key not in _updates:
        table = by_key.table
        sql = _update_sql(table, names, dialect, by_key.unless_newer)
        processors = [binder(table.c[name].type, dialect) for name in names]
        _updates[by_key] = None if sql is None else (sql, processors)
    found = _updates[by_key]
    if found is None:
        return None
    sql, processors = found
    for process, column in zip(processors, values, strict=True):
        if process is not None:
            column[:] = [None if value is None else process(value) for value in column]
    return sql, values


def _update_sql(
    table: Table, names: Sequence[str], dialect: Dialect, unless_newer: str | None
) -> str | None:
    """``UPDATE t SET c = v.vN ... FROM (the arrays, each row's own row locked, in key order)``.

    The locks are taken by the inner ``SELECT ... ORDER BY ... FOR UPDATE``, whatever join the
    planner picks for the outer statement: a statement per row, sent in key order, locked in
    that order too.
    """
    quote = dialect.identifier_preparer
    casts = [array_cast(table.c[name].type, dialect) for name in names]
    if None in casts:
        return None
    arrays = ", ".join(f"${n}{cast}" for n, cast in enumerate(casts, start=1))
    aliases = ", ".join(f"v{n}" for n in range(len(names)))
    quoted = [quote.format_column(table.c[name]) for name in names]
    sets = ", ".join(f"{column} = v.v{n}" for n, column in enumerate(quoted[1:], start=1))
    target = quote.format_table(table)
    where = f"{target}.{quoted[0]} = v.v0"
    if unless_newer is not None:
        n = names.index(unless_newer)
        stored = f"{target}.{quoted[n]}"
        where += f" AND ({stored} IS NULL OR {stored} <= v.v{n})"
    # Names and types come from the table's declaration, never from the rows' values.
    return (
        f"UPDATE {target} SET {sets} FROM (SELECT u.* FROM unnest({arrays}) AS u({aliases}) "  # noqa: S608
        f"JOIN {target} AS locked ON locked.{quoted[0]} = u.v0 "
        f"ORDER BY u.v0 FOR UPDATE OF locked) AS v WHERE {where}"
    )


class DirectPg:
    """asyncpg's connection under one SQLAlchemy connection: in SQLAlchemy's transaction, or,
    on a connection in autocommit, in the one ``lazy_begin`` opens with ``begin``."""

    def __init__(self, conn: AsyncConnection, adapted: Any, *, autocommit: bool = False) -> None:
        self._conn = conn
        self._adapted = adapted
        self._driver = adapted._connection
        self._autocommit = autocommit

    @classmethod
    async def of(cls, conn: AsyncConnection, *, autocommit: bool = False) -> DirectPg | None:
        """``None`` off asyncpg. ``autocommit``: ``conn`` is in autocommit and statements
        run as they are (``lazy_begin`` opens its own transaction when it needs one)."""
        if conn.dialect.name != "postgresql" or conn.dialect.driver != "asyncpg":
            return None
        adapted = (await conn.get_raw_connection()).dbapi_connection
        needed = ("_connection", "_transaction", "_start_transaction")
        if adapted is None or not all(hasattr(adapted, name) for name in needed):
            return None
        return cls(conn, adapted, autocommit=autocommit)

    async def _run(self, sql: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            if not self._autocommit and self._adapted._transaction is None:
                await self._adapted._start_transaction()
            return await call()
        except Exception as error:
            failed = await self._failed(sql, error)
            if failed is error:
                raise
            raise failed from error

    async def _failed(self, sql: str, error: Exception) -> Exception:
        """``error`` as SQLAlchemy raises it from its own statements: translated into the
        DB-API's classes (``_handle_exception``) and wrapped in ``sqlalchemy.exc``, or as it
        is when it is none of them (a time-out); the connection invalidated when it is gone."""
        dbapi = self._conn.dialect.loaded_dbapi
        translated: Exception = error
        if not isinstance(error, dbapi.Error):
            try:
                self._adapted._handle_exception(error)
            except Exception as found:
                translated = found
        ours = isinstance(translated, dbapi.Error)
        gone = unreachable(translated) or (
            ours and self._conn.dialect.is_disconnect(cast(Any, translated), self._adapted, None)
        )
        if gone:
            await self._conn.invalidate(translated)
        if not ours:
            return translated
        return DBAPIError.instance(sql, None, translated, dbapi.Error, connection_invalidated=gone)

    async def begin(self) -> Any:
        """asyncpg's own transaction, started (for a connection in autocommit); a failure
        reads and invalidates as a statement's would."""

        async def start() -> Any:
            transaction = self._driver.transaction()
            await transaction.start()
            return transaction

        return await self._run("BEGIN", start)

    async def commit(self, transaction: Any) -> None:
        await self._run("COMMIT", transaction.commit)

    async def fetch(self, prepared: PreparedSelect) -> list[Any]:
        found = await self._run(
            prepared.sql, lambda: self._driver.fetch(prepared.sql, *prepared.parameters)
        )
        return prepared.rows(found)

    async def execute(self, sql: str, parameters: Sequence[Any]) -> int:
        """One statement; how many rows it touched."""
        status: str = await self._run(sql, lambda: self._driver.execute(sql, *parameters))
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._run(sql, lambda: self._driver.executemany(sql, rows))
