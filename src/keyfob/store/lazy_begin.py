"""A unit of work on PostgreSQL that opens a transaction only when it needs one.

Most units read, judge in Python, then write: the acceptor looks up callbacks and keys, then
inserts the remotes, their first events and notifications; the delivery worker's record
inserts its attempts and marks the rows delivered. Run in a transaction, such a unit costs a
``BEGIN`` and a ``COMMIT`` round trip, and one more for each table it writes, each a wait for
the server and, on a busy machine, for a core.

Under READ COMMITTED, PostgreSQL's level and keyfob's, every statement of a transaction reads
its own fresh snapshot, so a plain read inside the transaction sees nothing that the same read
outside it would not. Only locking reads (``FOR UPDATE``/``SHARE``) and writes need it. So the
unit runs on a connection in autocommit:

* a plain read runs at once, as a statement of its own;
* writes are held back (their answer is ``None`` whether they run now or later) while the
  plan goes on;
* if the plan ends there, the held writes go as **one** statement: the first ones as
  data-modifying ``WITH`` clauses of the last. One statement is atomic on its own: all of it
  is stored, or none;
* anything else (a locking read, a read after a write, a write whose row count the plan needs,
  a write per row over several rows other than a ``ByKey`` update, a write the direct path
  cannot word) opens the transaction there: ``BEGIN``, the held writes, that step, and so on
  to ``COMMIT``. Inside the transaction writes are held back the same way, until the next
  step that is not one of them or the end: the dispatcher's unit, which must lock the
  remotes it advances, still sends its events and notifications as one statement, with the
  remotes' new states (one ``ByKey`` update over arrays however many remotes it advanced).

Held writes that touch one table twice go one after another, in order, in a transaction.

The sub-statements of one statement do not see each other's rows and run in no set order, which
is why held writes are merged only when each touches a table of its own: then no write depends
on another's effect. Foreign keys are checked at the end of the statement, so a row that refers
to one inserted beside it is accepted. Durability is the same as a transaction's: the commit of
the one statement waits for the disk as ``COMMIT`` would.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store._asyncpg import DirectPg, array_insert, array_update
from keyfob.store._sqlite import prepare_select
from keyfob.store.pg_steps import run_one_step
from keyfob.store.plans import Execute, Fetch, Insert, Plan, Ready, inserts, statements

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\$(\d+)")
_MERGED_KEPT = 512
_merged: dict[tuple[str, ...], str | None] = {}


class _Write:
    """A held write: its table, SQL (``$1``… placeholders) and parameters."""

    __slots__ = ("parameters", "sql", "table")

    def __init__(self, table: str, sql: str, parameters: Sequence[Any]) -> None:
        self.table = table
        self.sql = sql
        self.parameters = parameters


def _plain_read(step: Fetch) -> bool:
    statement = step.statement
    return isinstance(statement, Select) and statement._for_update_arg is None


def _held(step: Insert | Execute, dialect: Dialect) -> list[_Write] | None:
    """``step`` as writes that can wait for the end of the plan; ``None`` if it cannot."""
    if isinstance(step, Insert):
        arrays = inserts(step, dialect, array_insert)
        if arrays is None:
            return None
        tables = [table.name for table, rows in step.work if rows]
        return [
            _Write(table, sql, columns)
            for table, (sql, columns) in zip(tables, arrays, strict=True)
        ]
    if step.rows is None:
        return None  # the plan wants its row count now
    if not step.rows:
        return []
    if len(step.rows) != 1:
        # Several executions: one statement stands for them only as a ``ByKey`` update.
        if step.by_key is None:
            return None
        one = array_update(step.by_key, step.rows, dialect)
        return None if one is None else [_Write(step.by_key.table.name, *one)]
    worded = statements(step, dialect)
    if worded is None:
        return None
    table = getattr(step.statement.table, "name", None)
    if table is None:
        return None  # an UPDATE over a join: not merged
    ((sql, (parameters,)),) = worded
    return [_Write(table, sql, parameters)]


def _as_one(held: list[_Write]) -> tuple[str, list[Any]] | None:
    """Two or more held writes as one statement and its parameters; ``None`` when two touch
    one table, or a statement's placeholders are not numbered as its parameters."""
    if len({write.table for write in held}) != len(held):
        return None
    sql = merged_sql([w.sql for w in held], [len(w.parameters) for w in held])
    if sql is None:
        return None
    return sql, [value for write in held for value in write.parameters]


def merged_sql(sqls: Sequence[str], counts: Sequence[int]) -> str | None:
    """``sqls`` as one statement: every one but the last a ``WITH`` clause, placeholders
    renumbered in order (``counts``: how many each has); ``None`` if a statement's placeholders
    are not ``$1`` to its count. Worked out once per shape."""
    key = (*sqls, *map(str, counts))
    if key not in _merged:
        if len(_merged) >= _MERGED_KEPT:
            _merged.clear()
        _merged[key] = _merge(sqls, counts)
    return _merged[key]


def _merge(sqls: Sequence[str], counts: Sequence[int]) -> str | None:
    parts: list[str] = []
    offset = 0
    for sql, count in zip(sqls, counts, strict=True):
        if {int(n) for n in _PLACEHOLDER.findall(sql)} != set(range(1, count + 1)):
            return None
        parts.append(_renumbered(sql, offset))
        offset += count
    clauses = ", ".join(f"w{index} AS ({part})" for index, part in enumerate(parts[:-1]))
    return f"WITH {clauses} {parts[-1]}"


def _renumbered(sql: str, by: int) -> str:
    def shifted(found: re.Match[str]) -> str:
        return f"${int(found.group(1)) + by}"

    return _PLACEHOLDER.sub(shifted, sql)


class _Unit:
    """One plan on one autocommit connection; ``tx`` once a transaction is open."""

    def __init__(self, conn: AsyncConnection, direct: DirectPg) -> None:
        self.conn = conn
        self.direct = direct
        self.held: list[_Write] = []
        self.tx: Any = None

    async def begin(self) -> None:
        """Open the transaction and run what was held back."""
        self.tx = await self.direct.begin()
        await self.flush()

    async def flush(self) -> None:
        """The held writes: one statement when they can be, else one after another."""
        held, self.held = self.held, []
        one = _as_one(held) if len(held) > 1 else None
        if one is not None:
            await self.direct.execute(*one)
            return
        for write in held:
            await self.direct.execute(write.sql, write.parameters)

    async def end(self) -> None:
        """What is held, as one statement in autocommit; or flushed, then ``COMMIT``."""
        if self.tx is None:
            held = self.held
            if not held:
                return
            one = (held[0].sql, held[0].parameters) if len(held) == 1 else _as_one(held)
            if one is not None:
                self.held = []
                await self.direct.execute(*one)
                return
            await self.begin()
        else:
            await self.flush()
        await self.direct.commit(self.tx)

    async def step(self, step: Fetch | Insert | Execute) -> Any:
        """Run ``step`` now, or hold it back (a write: its answer is ``None`` either way)."""
        dialect = self.conn.dialect
        if isinstance(step, Fetch):
            if self.tx is None and not self.held and _plain_read(step):
                prepared = prepare_select(step.statement, dialect, step.parameters)
                if prepared is not None:
                    return await self.direct.fetch(prepared)
        else:
            writes = _held(step, dialect)
            if writes is not None:
                self.held.extend(writes)
                return None
        if self.tx is None:
            await self.begin()
        else:
            await self.flush()
        return await run_one_step(self.conn, self.direct, step)


async def run_lazily(conn: AsyncConnection, direct: DirectPg, plan: Plan[T]) -> T:
    """``plan`` on ``conn`` (in autocommit), opening a transaction only if it must."""
    unit = _Unit(conn, direct)
    answer: Any = None
    try:
        while True:
            try:
                step = plan.send(answer)
            except StopIteration as done:
                await unit.end()
                result: T = done.value
                return result
            answer = await unit.step(step.step if isinstance(step, Ready) else step)
    except BaseException:
        if unit.tx is not None:
            await _roll_back(conn, unit.tx)
        raise


async def _roll_back(conn: AsyncConnection, tx: Any) -> None:
    """Undo the open transaction; a connection that cannot is not given back to the pool."""
    try:
        await tx.rollback()
    except Exception:
        with contextlib.suppress(Exception):
            await conn.invalidate()
