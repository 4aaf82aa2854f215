"""Reads and multi-row inserts in one trip to the database driver.

On SQLite, aiosqlite runs the ``sqlite3`` connection on its own thread and every DB-API call is
a hand-off to it and back; through SQLAlchemy one statement costs three or four of them
(cursor, execute, close). Under load each hand-off waits for the event loop's turn, so a group
commit of three tables spent most of its time waiting, not writing (measured: 23 hand-offs,
5 ms for 16 remotes). ``insert_rows`` converts the rows with each column's own SQLAlchemy bind
processor, exactly as ``conn.execute(table.insert(), rows)`` would, then runs every
``executemany`` in one hand-off, inside the caller's transaction (same ``sqlite3`` connection;
``sqlite3`` opens the transaction before the first insert as it always does).

``fetch_all`` does the same for a ``SELECT``: SQLAlchemy compiles it (IN lists expanded) and
its columns' result processors turn the driver's values into what ``conn.execute`` would give.

PostgreSQL (asyncpg) goes through SQLAlchemy as before; so does SQLite if the driver does not
expose what the one hand-off needs, or a statement needs more than plain parameters.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

Rows = Sequence[Mapping[str, Any]]
_Plan = tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]
_plans: dict[tuple[str, str, tuple[str, ...]], _Plan | None] = {}


def _binder(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column's bind processor as the dialect applies it (its own variant of the type)."""
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _reader(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    """The INSERT's SQL and, in its parameter order, each column's bind processor (cached).

    ``None`` when SQLAlchemy would add parameters the rows do not carry (a column default):
    those inserts take the ordinary path.
    """
    cache_key = (dialect.name, table.name, keys)
    if cache_key not in _plans:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
        order = list(compiled.positiontup or ())
        _plans[cache_key] = (
            None
            if set(order) != set(keys)
            else (
                str(compiled),
                [(name, _binder(table.c[name].type, dialect)) for name in order],
            )
        )
    return _plans[cache_key]


def _parameters(plan: _Plan, rows: Rows) -> list[tuple[Any, ...]]:
    columns = plan[1]
    return [
        tuple(
            row[name] if process is None or row[name] is None else process(row[name])
            for name, process in columns
        )
        for row in rows
    ]


def _sqlite_driver(conn: Any) -> Any | None:
    """aiosqlite's connection if it offers a run-this-on-your-thread call, else ``None``."""
    driver = getattr(conn, "driver_connection", None)
    if driver is None or not callable(getattr(driver, "_execute", None)):
        return None
    return driver


async def insert_rows(conn: AsyncConnection, work: Sequence[tuple[Table, Rows]]) -> None:
    """Insert each table's rows (every row of a table with the same keys), in order."""
    work = [(table, rows) for table, rows in work if rows]
    if not work:
        return
    driver = None
    if conn.dialect.name == "sqlite":
        driver = _sqlite_driver(await conn.get_raw_connection())
    plans = [
        None if driver is None else _plan(t, tuple(r[0].keys()), conn.dialect) for t, r in work
    ]
    if driver is None or None in plans:
        for table, rows in work:
            await conn.execute(table.insert(), list(rows))
        return
    statements = [
        (plan[0], _parameters(plan, rows))
        for plan, (_, rows) in zip(plans, work, strict=True)
        if plan is not None
    ]

    def run() -> None:
        sqlite = driver._conn
        for sql, parameters in statements:
            sqlite.executemany(sql, parameters)

    await driver._execute(run)


_PLAIN = (str, int, float, type(None))
_row_types: dict[tuple[str, ...], Any] = {}


def _row_type(names: tuple[str, ...]) -> Any:
    found = _row_types.get(names)
    if found is None:
        found = _row_types[names] = namedtuple("Row", names)
    return found


async def fetch_all(conn: AsyncConnection, statement: Select[Any]) -> Sequence[Any]:
    """Every row of ``statement``, each with attribute access by column name."""
    driver = None
    if conn.dialect.name == "sqlite":
        driver = _sqlite_driver(await conn.get_raw_connection())
    if driver is None:
        return list(await conn.execute(statement))
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    parameters = tuple(values[name] for name in compiled.positiontup or ())
    columns = list(statement.selected_columns)
    names = tuple(str(column.key) for column in columns)
    plain = all(isinstance(value, _PLAIN) for value in parameters)
    if not plain or None in (c.key for c in columns) or len(set(names)) != len(names):
        return list(await conn.execute(statement))
    processors = [_reader(column.type, conn.dialect) for column in columns]
    sql = str(compiled)

    def run() -> list[Any]:
        return list(driver._conn.execute(sql, parameters))

    row_type = _row_type(names)
    return [
        row_type(
            *(
                value if process is None or value is None else process(value)
                for value, process in zip(raw, processors, strict=True)
            )
        )
        for raw in await driver._execute(run)
    ]
