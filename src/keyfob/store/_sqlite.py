"""Reads, multi-row inserts and whole units of work in one trip to the database driver.

On SQLite, aiosqlite runs the ``sqlite3`` connection on its own thread and every DB-API call is
a hand-off to it and back; through SQLAlchemy one statement costs three or four of them
(cursor, execute, fetch, close). Under load each hand-off waits for the event loop's next turn
(about 2 ms with a few dozen requests in flight), so a group commit spent its time waiting,
not writing. Here SQLAlchemy still compiles every statement and each column's own bind and
result processors convert the values, exactly as ``conn.execute`` would; only the trips change:

* ``insert_rows`` / ``fetch_all``: one hand-off per call, inside the caller's transaction;
* ``units.run_unit``: a whole unit of work, written as a generator of steps, in one hand-off.

PostgreSQL (asyncpg) goes through SQLAlchemy as before; so does SQLite when the driver does not
expose what the one hand-off needs, or a statement needs more than plain parameters.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast
from uuid import UUID

from sqlalchemy import ARRAY, Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Delete, Update
from sqlalchemy.types import TypeEngine

Rows = Sequence[Mapping[str, Any]]
Processor = Callable[[Any], Any] | None
_PLAIN = (str, int, float, bytes, type(None))
_PLAIN_ASYNCPG = (*_PLAIN, datetime, date, time, timedelta, Decimal, UUID)
"""What reaches asyncpg as a plain value: it encodes these itself, in the binary protocol."""


def _plain(dialect: Dialect) -> tuple[type, ...]:
    return _PLAIN if dialect.name == "sqlite" else _PLAIN_ASYNCPG


_inserts: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[tuple[str, Processor]]] | None]
_inserts = {}
_row_types: dict[tuple[str, ...], Any] = {}


def binder(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """The column's bind processor as the dialect applies it (its own variant of the type)."""
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _reader(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _row_type(names: tuple[str, ...]) -> Any:
    found = _row_types.get(names)
    if found is None:
        found = _row_types[names] = namedtuple("Row", names)
    return found


def prepare_insert(table: Table, rows: Rows, dialect: Dialect) -> tuple[str, list[Any]] | None:
    """The INSERT's SQL and its rows as positional parameters, bind-processed.

    Every row must have the first row's keys. ``None`` when SQLAlchemy would add parameters
    the rows do not carry (a column default): that insert takes the ordinary path.
    """
    found = insert_columns(table, rows, dialect)
    if found is None:
        return None
    sql, _names, converted = found
    return sql, list(zip(*converted, strict=True))


def insert_columns(
    table: Table, rows: Rows, dialect: Dialect
) -> tuple[str, list[str], list[list[Any]]] | None:
    """The INSERT's SQL, its columns in parameter order, and each column's values across the
    rows, bind-processed (``None`` as for ``prepare_insert``)."""
    keys = tuple(rows[0].keys())
    cache_key = (dialect.name, table.name, keys)
    if cache_key not in _inserts:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
        order = list(compiled.positiontup or ())
        _inserts[cache_key] = (
            None
            if set(order) != set(keys)
            else (str(compiled), [(name, binder(table.c[name].type, dialect)) for name in order])
        )
    plan = _inserts[cache_key]
    if plan is None:
        return None
    sql, columns = plan
    # Column by column: the rows of one batch mostly share their timestamps (one ``now``),
    # so a value identical to the previous row's reuses its converted form.
    converted: list[list[Any]] = []
    for name, process in columns:
        values = [row[name] for row in rows]
        if process is not None:
            previous: Any = None
            done: Any = None
            for index, value in enumerate(values):
                if value is None:
                    continue
                if value is not previous:
                    previous, done = value, process(value)
                values[index] = done
        converted.append(values)
    return sql, [name for name, _ in columns], converted


_Compiled = tuple[SQLCompiler, dict[str, Processor]]
_compiled: dict[tuple[str, Any], _Compiled] = {}


def _compiled_with_processors(statement: ClauseElement, dialect: Dialect, key: Any) -> _Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, cache_key=key))
    # Each bind parameter's processor by name; those of expanded IN lists come with the
    # expanded state at execution.
    processors = {name: binder(bind.type, dialect) for name, bind in compiled.binds.items()}
    return compiled, processors


def _compile(
    statement: ClauseElement, dialect: Dialect
) -> tuple[SQLCompiler, dict[str, Processor], Any]:
    """The statement compiled once per shape (SQLAlchemy's own cache key), its parameters'
    processors, and this statement's values.

    Compiling costs more than running most of these statements; like ``conn.execute``, only
    the first statement of a shape pays it.
    """
    key = statement._generate_cache_key()
    if key is None:  # a shape SQLAlchemy does not cache either
        return (*_compiled_with_processors(statement, dialect, None), None)
    found = _compiled.get((dialect.name, key.key))
    if found is None:
        if len(_compiled) >= 500:
            _compiled.clear()
        found = _compiled[(dialect.name, key.key)] = _compiled_with_processors(
            statement, dialect, key
        )
    return (*found, key.bindparams)


def _bind(
    prepared: tuple[SQLCompiler, dict[str, Processor], Any],
    given: Sequence[Mapping[str, Any] | None],
) -> tuple[str, list[tuple[Any, ...]]] | None:
    """SQL and positional parameters, one tuple per mapping in ``given``, IN lists expanded
    and every value converted by its bind parameter's type, as ``conn.execute`` would.

    ``None`` if a value would reach the driver as anything but a plain value.
    """
    compiled, own, extracted = prepared
    plain = _plain(compiled.dialect)
    sql = ""
    found = []
    for params in given:
        values = compiled.construct_params(params, extracted_parameters=extracted)
        state = compiled.construct_expanded_state(values)
        sql, expanded = state.statement, state.processors
        row = []
        for name in state.positiontup or ():
            value = state.parameters[name]
            process = own[name] if name in own else expanded.get(name)
            if value is not None and process is not None:
                value = process(value)
            if not isinstance(value, plain) and not _array(compiled, name, value):
                return None
            row.append(value)
        found.append(tuple(row))
    return sql, found


def _array(compiled: SQLCompiler, name: str, value: Any) -> bool:
    """A list for an array parameter (``queries.one_of`` on PostgreSQL): asyncpg encodes it."""
    bind = compiled.binds.get(name)
    return isinstance(value, list) and bind is not None and isinstance(bind.type, ARRAY)


def _bound(
    statement: ClauseElement,
    dialect: Dialect,
    given: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[str, list[tuple[Any, ...]]] | None:
    """``_bind`` for a statement compiled (or found compiled) now."""
    return _bind(_compile(statement, dialect), list(given) if given else [None])


@dataclass(frozen=True)
class PreparedSelect:
    sql: str
    parameters: tuple[Any, ...]
    row_type: Any
    processors: list[Processor]

    def rows(self, found: Sequence[Sequence[Any]]) -> list[Any]:
        processors = self.processors
        return [
            self.row_type(
                *(
                    value if process is None or value is None else process(value)
                    for value, process in zip(raw, processors, strict=True)
                )
            )
            for raw in found
        ]


@dataclass(frozen=True)
class _SelectShape:
    statement: Select[Any]  # held, so that the id it is filed under stays its own
    compiled: tuple[SQLCompiler, dict[str, Processor], Any]
    row_type: Any
    processors: list[Processor]


_shapes: dict[tuple[str, int], _SelectShape | None] = {}
S = TypeVar("S")
E = TypeVar("E", bound=ClauseElement)


def _kept(
    memo: dict[tuple[str, int], S | None],
    statement: E,
    dialect: Dialect,
    work_out: Callable[[E, Dialect], S | None],
) -> S | None:
    """What ``work_out`` found for this statement object, worked out on first use.

    Filed under the object's id: the value holds the statement, so the id stays its own.
    """
    key = (dialect.name, id(statement))
    if key not in memo:
        if len(memo) >= 200:
            memo.clear()
        memo[key] = work_out(statement, dialect)
    return memo[key]


def _select_shape(statement: Select[Any], dialect: Dialect) -> _SelectShape | None:
    columns = list(statement.selected_columns)
    names = tuple(str(column.key) for column in columns)
    if None in (column.key for column in columns) or len(set(names)) != len(names):
        return None
    processors = [_reader(column.type, dialect) for column in columns]
    return _SelectShape(statement, _compile(statement, dialect), _row_type(names), processors)


def prepare_select(
    statement: Select[Any], dialect: Dialect, parameters: Mapping[str, Any] | None = None
) -> PreparedSelect | None:
    """SQL, plain positional parameters and row conversion; ``None`` if any is not simple.

    A statement given with ``parameters`` (bound with ``bindparam``) is taken to be built
    once and reused: its shape is worked out the first time and kept. Without, the values
    are in the statement, which is new every call: only its compiled form is reused.
    """
    if parameters is None:
        shape = _select_shape(statement, dialect)
    else:
        shape = _kept(_shapes, statement, dialect, _select_shape)
    if shape is None:
        return None
    bound = _bind(shape.compiled, [parameters])
    if bound is None:
        return None
    return PreparedSelect(bound[0], bound[1][0], shape.row_type, shape.processors)


@dataclass(frozen=True)
class _PerRow:
    """A constant UPDATE/DELETE without IN lists: its SQL and how to build each row's tuple."""

    statement: ClauseElement  # held, so that the id it is filed under stays its own
    sql: str
    # Per positional parameter: its name, its processor, the statement's own value for a
    # parameter the rows do not carry (already converted), and whether it takes an array.
    slots: list[tuple[str, Processor, bool, Any, bool]]


_per_row: dict[tuple[str, int], _PerRow | None] = {}


def _per_row_shape(statement: ClauseElement, dialect: Dialect) -> _PerRow | None:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    if compiled.post_compile_params or not compiled.positiontup:
        return None  # IN lists expand per execution: the general path handles them
    slots: list[tuple[str, Processor, bool, Any, bool]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        process = binder(bind.type, dialect)
        own = not bind.required and bind.value is not None
        value = bind.effective_value if own else None
        if own and process is not None:
            value = process(value)
        slots.append((name, process, own, value, isinstance(bind.type, ARRAY)))
    return _PerRow(statement, compiled.string, slots)


def _rows_for(
    shape: _PerRow, rows: Sequence[Mapping[str, Any]], dialect: Dialect
) -> list[tuple[Any, ...]] | None:
    plain = _plain(dialect)
    found = []
    for row in rows:
        values = []
        for name, process, own, fixed, array in shape.slots:
            if name in row:
                value = row[name]
                if value is not None and process is not None:
                    value = process(value)
            elif own:
                value = fixed
            else:
                return None  # missing a value: the general path raises SQLAlchemy's error
            if not isinstance(value, plain) and not (array and isinstance(value, list)):
                return None
            values.append(value)
        found.append(tuple(values))
    return found


def prepare_statement(
    statement: Update | Delete, dialect: Dialect, rows: Sequence[Mapping[str, Any]] | None = None
) -> tuple[str, list[tuple[Any, ...]]] | None:
    """An UPDATE or DELETE: its SQL and one parameter tuple per row (or just one).

    Run per row (``rows`` given), the statement is taken to be built once (module constant,
    values as ``bindparam``): its SQL and parameter order are worked out the first time and
    each row becomes a tuple directly, instead of SQLAlchemy's per-execution parameter state.
    """
    if rows:
        shape = _kept(_per_row, statement, dialect, _per_row_shape)
        if shape is not None:
            found = _rows_for(shape, rows, dialect)
            if found is not None:
                return shape.sql, found
    return _bound(statement, dialect, rows)


def sqlite_driver(conn: Any) -> Any | None:
    """aiosqlite's connection if it offers a run-this-on-your-thread call, else ``None``."""
    driver = getattr(conn, "driver_connection", None)
    if driver is None or not callable(getattr(driver, "_execute", None)):
        return None
    return driver


async def _driver(conn: AsyncConnection) -> Any | None:
    if conn.dialect.name != "sqlite":
        return None
    return sqlite_driver(await conn.get_raw_connection())


async def insert_rows(conn: AsyncConnection, work: Sequence[tuple[Table, Rows]]) -> None:
    """Insert each table's rows (every row of a table with the same keys), in order."""
    work = [(table, rows) for table, rows in work if rows]
    if not work:
        return
    driver = await _driver(conn)
    prepared = [
        None if driver is None else prepare_insert(table, rows, conn.dialect)
        for table, rows in work
    ]
    if driver is None or None in prepared:
        for table, rows in work:
            await conn.execute(table.insert(), list(rows))
        return

    def run() -> None:
        for sql, parameters in filter(None, prepared):
            driver._conn.executemany(sql, parameters)

    await driver._execute(run)


async def fetch_all(
    conn: AsyncConnection, statement: Select[Any], parameters: Mapping[str, Any] | None = None
) -> Sequence[Any]:
    """Every row of ``statement``, each with attribute access by column name."""
    driver = await _driver(conn)
    prepared = None if driver is None else prepare_select(statement, conn.dialect, parameters)
    if driver is None or prepared is None:
        return list(await conn.execute(statement, parameters))

    def run() -> list[Any]:
        return list(driver._conn.execute(prepared.sql, prepared.parameters))

    return prepared.rows(await driver._execute(run))
