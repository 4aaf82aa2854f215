"""A unit of work as data: the steps a plan yields, and how one step runs on SQLite's thread.

A plan is a generator that yields ``Fetch``, ``Insert`` and ``Execute`` steps and returns its
result; between steps it is plain Python. ``store.units`` runs a plan as one transaction on any
database; ``store.unit_group`` runs plans on SQLite's driver thread, several to a commit when
several wait. This module holds what both need: the steps, their SQL worked out for
``sqlite3`` (``statements``), and one step run on a ``sqlite3`` connection (``run_step``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import Select, Table, bindparam, update
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Delete, Update

from keyfob.store._sqlite import (
    Rows,
    prepare_insert,
    prepare_select,
    prepare_statement,
)
from keyfob.store.engine import Database

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
class ByKey:
    """An UPDATE per row that finds its row by one key column and sets ``columns`` from the
    row's values, each ``bindparam`` named ``prefix`` + column (``prefix`` + ``key`` for the
    key). Declared once, at import; ``statement`` is its per-row form. ``unless_newer``: a
    column of ``columns`` whose stored value, when later than the row's, leaves the row alone
    (a report older than the one known changes nothing).

    On PostgreSQL a step of several such rows goes as one UPDATE joined to arrays of the
    values (``_asyncpg.array_update``) instead of a statement per row. That statement locks
    its rows in key order before it changes them, as rows sent one by one in key order would:
    two units updating the same rows wait for each other, never deadlock.
    """

    table: Table
    key: str
    columns: tuple[str, ...]
    prefix: str
    unless_newer: str | None = None

    @cached_property
    def statement(self) -> Update:
        statement = update(self.table).where(
            self.table.c[self.key] == bindparam(self.prefix + self.key)
        )
        if self.unless_newer is not None:
            stored = self.table.c[self.unless_newer]
            given = bindparam(self.prefix + self.unless_newer, type_=stored.type)
            statement = statement.where(stored.is_(None) | (stored <= given))
        return statement.values({name: bindparam(self.prefix + name) for name in self.columns})

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> Execute:
        """The step that updates ``rows`` (each with the key and every column, prefixed)."""
        return Execute(self.statement, rows, by_key=self)


@dataclass(frozen=True)
class Execute:
    """An UPDATE or DELETE, once or once per row of ``rows``.

    Run once, it sends back how many rows it touched; per row, ``None`` (asyncpg does not
    count an ``executemany``). ``by_key``: the statement is that declaration's, and several
    rows may go as one statement.
    """

    statement: Update | Delete
    rows: Sequence[Mapping[str, Any]] | None = None
    by_key: ByKey | None = None


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
    return Ready(step, statements(step, database.engine.dialect))


def statements(step: Insert | Execute, dialect: Dialect) -> Statements | None:
    """A write step's SQL and parameter tuples for ``sqlite3``; ``None`` if it needs more
    than plain parameters (it then takes the ordinary path)."""
    if isinstance(step, Insert):
        return inserts(step, dialect, prepare_insert)
    found: Statements = []
    if step.rows is None or step.rows:  # per row with no rows: nothing to do
        statement = prepare_statement(step.statement, dialect, step.rows)
        if statement is None:
            return None
        found.append(statement)
    return found


def write(sqlite: Any, step: Insert | Execute, prepared: Statements) -> int | None:
    """Run a write step's statements; an ``Execute`` run once answers how many rows it
    touched, every other step ``None``."""
    count = 0
    for sql, parameters in prepared:
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


def inserts(
    step: Insert, dialect: Dialect, prepare: Callable[[Table, Rows, Dialect], Any]
) -> Statements | None:
    """Each table's rows as ``prepare`` words them: rows of parameters (``prepare_insert``)
    or one statement over arrays (``_asyncpg.array_insert``); ``None`` as ``statements``."""
    found: Statements = []
    for table, rows in step.work:
        if rows:
            insert = prepare(table, rows, dialect)
            if insert is None:
                return None
            found.append(insert)
    return found


def run_step(sqlite: Any, dialect: Dialect, step: Step) -> Any:
    """One step on a ``sqlite3`` connection, inside the caller's transaction: the rows of a
    ``Fetch``, the count of an ``Execute`` run once, ``None`` for the rest. Raises
    ``NotOneTrip`` for a step that needs more than plain parameters."""
    if isinstance(step, Ready):
        if step.sqlite is not None:
            return write(sqlite, step.step, step.sqlite)
        step = step.step
    if isinstance(step, Fetch):
        prepared = prepare_select(step.statement, dialect, step.parameters)
        if prepared is None:
            raise NotOneTrip(step)
        return prepared.rows(sqlite.execute(prepared.sql, prepared.parameters).fetchall())
    found = statements(step, dialect)
    if found is None:
        raise NotOneTrip(step)
    return write(sqlite, step, found)
