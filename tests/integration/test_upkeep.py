"""keyfob keeps its tables on a PostgreSQL server that does not (``store.upkeep``).

What a user would notice without it, on a server with autovacuum off: a look-up prepared while
its table was empty reads the whole table for good, however large the table grows, and dead
row versions pile up. With it: after a round the same prepared statement goes through its
index, the dead rows are gone, and two processes never run a round at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text
from sqlalchemy.dialects import postgresql

from hand_offs import tables_of
from keyfob.remotes import progress
from keyfob.store.engine import Database
from keyfob.store.upkeep import LOCK_KEY, Policy, TableUpkeep

pytestmark = pytest.mark.postgres

scratch = MetaData()
jobs = Table(
    "upkeep_jobs",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("command", String(16), nullable=False),
    Column("n", Integer, nullable=False),
)
ROWS = 5_000

# A copy of ``remotes`` with its columns and indexes and no statistics (earlier tests may have
# given the real one some, and a plan made with statistics is not the one this is about).
_COPY = "CREATE TABLE upkeep_remotes (LIKE remotes INCLUDING ALL)"
# Remotes past their command.
_REMOTES = text(
    """
INSERT INTO upkeep_remotes (id, fleet_id, vehicle_id, callback_id, type, body, status, last_seq,
                     phase, due_at, created_at, updated_at, command_id)
SELECT 'r' || g, 'fleet', 'vehicle', 'callback', 'Horn', '{}', 'Success', 4, 'done', now(),
       now(), now(), 'c' || g
FROM generate_series(1, :n) g
"""
)


def prepared(statement: Any, name: str) -> str:
    """``statement`` as a SQL ``PREPARE``, worded as keyfob sends it through asyncpg, on the
    copy of ``remotes``."""
    sql = str(statement.compile(dialect=postgresql.asyncpg.dialect()))
    return f"PREPARE {name} AS " + re.sub(r"\bremotes\b", "upkeep_remotes", sql)


@pytest.fixture
async def tables(pg: Database) -> AsyncIterator[Database]:
    async with tables_of(pg, scratch) as database:
        yield database


@pytest.fixture
async def raw(tables: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(tables.url)
    try:
        yield connection
    finally:
        await connection.close()


def upkeep(database: Database) -> TableUpkeep:
    return TableUpkeep(database, ["upkeep_jobs"], mode="on", every_s=0.05)


async def plan(connection: asyncpg.Connection) -> str:
    rows = await connection.fetch("EXPLAIN EXECUTE sent(ARRAY['c1', 'c2'], 'sent')")
    return "\n".join(r[0] for r in rows)


async def fill(connection: asyncpg.Connection) -> None:
    await connection.execute(
        "INSERT INTO upkeep_jobs SELECT 'j' || i, 'c' || i, 0 FROM generate_series(1, $1) i",
        ROWS,
    )


async def counted(connection: asyncpg.Connection, table: str, column: str, at_least: int) -> None:
    """A backend reports its counts when it goes idle, and up to 10 s later when another
    session was reading them at that moment: wait for them."""
    for _ in range(300):
        value = await connection.fetchval(
            f"SELECT {column} FROM pg_stat_user_tables WHERE relname = $1",
            table,
        )
        if value >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{column} of {table} never reached {at_least}")


async def test_the_dispatchers_look_up_goes_back_to_its_index_after_a_round(pg: Database) -> None:
    """The look-up of remotes by the command a car answers, prepared while the table was
    empty: without a round it reads every remote for good, however many there are."""
    connection = await asyncpg.connect(pg.url)
    await connection.execute(_COPY)
    try:
        # One generic plan, as a prepared statement settles on after a few runs.
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(prepared(progress._SENT, "sent"))
        assert "Seq Scan on upkeep_remotes" in await plan(connection)
        async with pg.transaction() as conn:
            await conn.execute(_REMOTES, {"n": ROWS})
        await counted(connection, "upkeep_remotes", "n_mod_since_analyze", ROWS)
        stale = await plan(connection)
        assert "Seq Scan on upkeep_remotes" in stale, "what upkeep is there for"

        keeper = TableUpkeep(pg, ["upkeep_remotes"], mode="on", every_s=1)
        assert await keeper.round(Policy()) == ['VACUUM (ANALYZE) "upkeep_remotes"']

        after = await plan(connection)
        assert "upkeep_remotes_command_id_idx" in after
        assert "Seq Scan on upkeep_remotes" not in after
    finally:
        await connection.execute("DROP TABLE upkeep_remotes")
        await connection.close()


async def test_dead_rows_are_cleared_and_a_quiet_table_is_left_alone(
    tables: Database, raw: asyncpg.Connection
) -> None:
    keeper = upkeep(tables)
    await fill(raw)
    await counted(raw, "upkeep_jobs", "n_ins_since_vacuum", ROWS)
    assert await keeper.round(Policy()) == ['VACUUM (ANALYZE) "upkeep_jobs"']
    await raw.execute("UPDATE upkeep_jobs SET n = n + 1")
    await raw.execute("UPDATE upkeep_jobs SET n = n + 1")
    await counted(raw, "upkeep_jobs", "n_dead_tup", ROWS)

    assert await keeper.round(Policy()) == ['VACUUM (ANALYZE) "upkeep_jobs"']

    await raw.execute("SELECT pg_stat_clear_snapshot()")
    dead = await raw.fetchval(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'upkeep_jobs'"
    )
    assert dead < 50
    assert await keeper.round(Policy()) == []  # nothing changed since: nothing to do


async def test_one_round_at_a_time_across_processes(
    tables: Database, raw: asyncpg.Connection
) -> None:
    await fill(raw)
    await counted(raw, "upkeep_jobs", "n_ins_since_vacuum", ROWS)
    assert await raw.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)

    assert await upkeep(tables).round(Policy()) == []  # another process is in its round

    await raw.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    assert await upkeep(tables).round(Policy()) == ['VACUUM (ANALYZE) "upkeep_jobs"']


async def until(condition: Callable[[], bool]) -> None:
    """Within 15 s: the server's counts can take up to 10 s to show (``counted``)."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_running_it_analyses_new_tables_at_once_and_the_rest_once_a_naptime(
    tables: Database, raw: asyncpg.Connection
) -> None:
    """A table with rows and no statistics yet is analysed at the next look (every 50 ms
    here); dead rows wait for the next full round, a naptime (60 s on this server) later."""
    clock = [0.0]
    keeper = TableUpkeep(
        tables, ["upkeep_jobs"], mode="on", every_s=0.05, monotonic=lambda: clock[0]
    )
    task = asyncio.create_task(keeper.run())
    await until(lambda: keeper.rounds > 0)  # the full round at the start: nothing to do
    assert keeper.done == []
    await fill(raw)
    await until(lambda: bool(keeper.done))
    assert keeper.done == ['VACUUM (ANALYZE) "upkeep_jobs"']  # no statistics: at once

    await raw.execute("UPDATE upkeep_jobs SET n = n + 1")
    await counted(raw, "upkeep_jobs", "n_dead_tup", ROWS)
    rounds = keeper.rounds
    await until(lambda: keeper.rounds > rounds + 2)
    assert keeper.done == ['VACUUM (ANALYZE) "upkeep_jobs"'], "not before the naptime"

    clock[0] += 61
    await until(lambda: len(keeper.done) == 2)
    assert keeper.done[1] == 'VACUUM (ANALYZE) "upkeep_jobs"'
    keeper.stop()
    await asyncio.wait_for(task, 2)


async def test_off_leaves_the_tables_alone(tables: Database, raw: asyncpg.Connection) -> None:
    keeper = TableUpkeep(tables, ["upkeep_jobs"], mode="off", every_s=0.05)
    await fill(raw)
    await asyncio.wait_for(keeper.run(), 2)  # returns at once: nothing to keep
    assert keeper.rounds == 0
    last: Any = await raw.fetchval(
        "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'upkeep_jobs'"
    )
    assert last is None
