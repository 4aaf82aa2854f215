"""One step of a plan, in the caller's transaction, on any database but SQLite's thread.

``units.run_steps`` awaits a plan's steps one by one with this, and ``lazy_begin`` once its
transaction is open. On PostgreSQL a step whose parameters are plain goes straight to asyncpg
(``_asyncpg``); anything else through SQLAlchemy. Several rows of a ``ByKey`` update go as one
statement over arrays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store._asyncpg import DirectPg, array_insert, array_update
from keyfob.store._sqlite import fetch_all, insert_rows, prepare_select
from keyfob.store.plans import Execute, Fetch, Insert, inserts, statements


async def run_one_step(
    conn: AsyncConnection, direct: DirectPg | None, step: Fetch | Insert | Execute
) -> Any:
    """``step`` run on ``conn``; what the plan is sent back (rows, a count or ``None``)."""
    if direct is not None:
        done, answer = await _direct_step(direct, conn.dialect, step)
        if done:
            return answer
    if isinstance(step, Fetch):
        return await fetch_all(conn, step.statement, step.parameters)
    if isinstance(step, Insert):
        await insert_rows(conn, step.work)
        return None
    if step.rows is not None:
        if step.rows:
            await conn.execute(step.statement, list(step.rows))
        return None
    return int((await conn.execute(step.statement)).rowcount or 0)


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
    if step.by_key is not None and step.rows:
        one = array_update(step.by_key, step.rows, dialect)
        if one is not None:
            await direct.execute(*one)
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
