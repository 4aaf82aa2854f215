"""``run_unit`` on PostgreSQL opens a transaction only when the plan needs one (``lazy_begin``).

What a user would notice if it went wrong: half a unit stored after a failure (the writes held
to the end sent as separate statements, each committed on its own), a plan that reads what it
has just written and does not find it, an update of a row inserted in the same unit that is
lost (two writes to one table merged into one statement, which cannot see each other), or a
locking read whose lock is gone before the unit writes. The round trips are counted too: the
point of the path is that a unit that reads then writes sends no ``BEGIN`` or ``COMMIT`` and
one write statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from hand_offs import tables_of
from keyfob.store.engine import Database
from keyfob.store.lazy_begin import merged_sql
from keyfob.store.units import Execute, Fetch, Insert, Plan, run_unit

pytestmark = pytest.mark.postgres

scratch = MetaData()
orders = Table(
    "lazy_orders",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)
lines = Table(
    "lazy_lines",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("order_id", String(16), nullable=False),
)
keys = Table("lazy_keys", scratch, Column("key", String(16), primary_key=True))


@pytest.fixture
async def tables(pg: Database) -> AsyncIterator[Database]:
    async with tables_of(pg, scratch) as database:
        yield database


@pytest.fixture
def sent(tables: Database) -> Iterator[list[str]]:
    """Every statement the unit's connections send to PostgreSQL, as asyncpg sees it."""
    seen: list[str] = []

    def logged(record: Any) -> None:
        seen.append(" ".join(record.query.split()).upper())

    def connected(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(logged)

    engine = tables.engine.sync_engine
    event.listen(engine, "connect", connected)
    yield seen
    event.remove(engine, "connect", connected)


async def fresh_pool(database: Database) -> None:
    """Connections opened from now on carry the query logger."""
    await database.engine.dispose()


def place(order: str, key: str | None = None) -> Plan[bool]:
    """The acceptor's shape: look up, judge, then insert into several tables."""
    found = yield Fetch(select(orders.c.id).where(orders.c.id == order))
    if list(found):
        return False
    yield Insert(
        [
            (orders, [{"id": order, "n": 1}]),
            (
                lines,
                [{"id": f"{order}-a", "order_id": order}, {"id": f"{order}-b", "order_id": order}],
            ),
            (keys, [{"key": key}] if key else []),
        ]
    )
    return True


async def contents(database: Database) -> dict[str, list[Any]]:
    async with database.read() as conn:
        return {
            "orders": [tuple(r) for r in await conn.execute(select(orders).order_by(orders.c.id))],
            "lines": [r[0] for r in await conn.execute(select(lines.c.id).order_by(lines.c.id))],
            "keys": [r[0] for r in await conn.execute(select(keys.c.key).order_by(keys.c.key))],
        }


async def test_reads_then_writes_go_without_a_transaction_as_one_statement(
    tables: Database, sent: list[str]
) -> None:
    await fresh_pool(tables)
    assert await run_unit(tables, lambda: place("o1", key="k1")) is True
    unit = [s for s in sent if "LAZY_" in s or s in ("BEGIN;", "COMMIT;", "BEGIN", "COMMIT")]
    assert not any(s.startswith(("BEGIN", "COMMIT")) for s in sent), sent
    assert [s.split()[0] for s in unit] == ["SELECT", "WITH"], unit
    assert await contents(tables) == {
        "orders": [("o1", 1)],
        "lines": ["o1-a", "o1-b"],
        "keys": ["k1"],
    }


async def test_a_failing_write_in_the_one_statement_stores_none_of_it(tables: Database) -> None:
    await run_unit(tables, lambda: place("o1", key="taken"))
    with pytest.raises(IntegrityError) as raised:
        await run_unit(tables, lambda: place("o2", key="taken"))  # the last table refuses it
    assert isinstance(raised.value.orig.__cause__, asyncpg.UniqueViolationError)
    assert await contents(tables) == {
        "orders": [("o1", 1)],
        "lines": ["o1-a", "o1-b"],
        "keys": ["taken"],
    }, "neither the order nor its lines of the refused unit"
    assert await run_unit(tables, lambda: place("o3")) is True, "the connection is usable"


async def test_a_plan_that_raises_after_its_writes_stores_nothing(tables: Database) -> None:
    def regrets() -> Plan[None]:
        yield Insert([(orders, [{"id": "o1", "n": 1}])])
        yield Execute(update(lines).where(lines.c.id == "x").values(order_id="y"), [{}])
        raise RuntimeError("changed its mind")

    with pytest.raises(RuntimeError, match="changed its mind"):
        await run_unit(tables, regrets)
    assert (await contents(tables))["orders"] == []


async def test_a_read_after_a_write_sees_it_and_a_failure_then_undoes_both(
    tables: Database, sent: list[str]
) -> None:
    await fresh_pool(tables)

    def check_back(fail: bool) -> Plan[int]:
        yield Insert([(orders, [{"id": "o1", "n": 5}])])
        found = yield Fetch(select(orders.c.n).where(orders.c.id == "o1"))
        if fail:
            raise RuntimeError("after the read")
        return int(next(iter(found)).n)

    with pytest.raises(RuntimeError, match="after the read"):
        await run_unit(tables, lambda: check_back(True))
    assert (await contents(tables))["orders"] == [], "the insert was in the transaction"
    assert any(s.startswith("BEGIN") for s in sent), "a read after a write needs the transaction"
    assert await run_unit(tables, lambda: check_back(False)) == 5


async def test_two_writes_to_one_table_apply_in_order(tables: Database) -> None:
    def insert_then_bump() -> Plan[None]:
        yield Insert([(orders, [{"id": "o1", "n": 1}])])
        yield Execute(update(orders).where(orders.c.id == "o1").values(n=orders.c.n + 10), [{}])

    await run_unit(tables, insert_then_bump)
    assert (await contents(tables))["orders"] == [("o1", 11)], "the update saw the insert"


async def test_a_locking_read_holds_its_lock_until_the_unit_commits(tables: Database) -> None:
    """Two units each lock the same order, then insert a line named after what they read:
    with the lock held to the commit, the second reads the first's count and the names differ."""
    await run_unit(tables, lambda: place("o1"))
    first_locked = asyncio.Event()

    def add_line(first: bool) -> Plan[None]:
        row = yield Fetch(select(orders.c.n).where(orders.c.id == "o1").with_for_update())
        n = int(next(iter(row)).n)
        if first:  # the second unit tries while this one waits between its read and writes
            first_locked.set()
            yield Fetch(select(func.pg_sleep(0.3).label("slept")))
        yield Execute(update(orders).where(orders.c.id == "o1").values(n=n + 1), [{}])
        yield Insert([(lines, [{"id": f"line-{n}", "order_id": "o1"}])])

    first = asyncio.create_task(run_unit(tables, lambda: add_line(True)))
    await first_locked.wait()
    await run_unit(tables, lambda: add_line(False))
    await first
    assert (await contents(tables))["lines"] == ["line-1", "line-2", "o1-a", "o1-b"]


async def test_after_a_locking_read_the_writes_still_go_as_one_statement(
    tables: Database, sent: list[str]
) -> None:
    """The dispatcher's shape: lock, then insert and update in other tables, all committed."""
    await run_unit(tables, lambda: place("o1"))
    await fresh_pool(tables)

    def advance(fail: bool) -> Plan[None]:
        row = yield Fetch(select(orders.c.n).where(orders.c.id == "o1").with_for_update())
        n = int(next(iter(row)).n)
        yield Insert([(lines, [{"id": f"line-{n}", "order_id": "o1"}]), (keys, [{"key": f"k{n}"}])])
        yield Execute(update(orders).where(orders.c.id == "o1").values(n=n + 1), [{}])
        if fail:
            raise RuntimeError("after the writes")

    with pytest.raises(RuntimeError, match="after the writes"):
        await run_unit(tables, lambda: advance(True))
    await run_unit(tables, lambda: advance(False))
    ours = ("LAZY_", "BEGIN", "COMMIT", "ROLLBACK")
    unit = [s.split()[0].rstrip(";") for s in sent if any(word in s for word in ours)]
    assert unit == ["BEGIN", "SELECT", "ROLLBACK", "BEGIN", "SELECT", "WITH", "COMMIT"], sent
    assert await contents(tables) == {
        "orders": [("o1", 2)],
        "lines": ["line-1", "o1-a", "o1-b"],
        "keys": ["k1"],
    }


async def test_connections_the_server_closed_are_dropped_when_a_unit_opens_its_transaction(
    tables: Database,
) -> None:
    """The server ends every idle connection of the pool (a restart, a reset): a unit that
    needs a transaction fails once per dead connection, then they are all replaced."""
    await run_unit(tables, lambda: place("o1"))

    def bump() -> Plan[None]:
        row = yield Fetch(select(orders.c.n).where(orders.c.id == "o1").with_for_update())
        yield Execute(update(orders).values(n=int(next(iter(row)).n) + 1), [{}])

    held = await asyncio.gather(*(run_unit(tables, bump) for _ in range(3)))  # fill the pool
    assert held == [None, None, None]
    async with tables.autocommit() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    failures: list[bool] = []
    for _ in range(12):
        try:
            await run_unit(tables, bump)
        except DBAPIError as error:
            failures.append(error.connection_invalidated)
    assert len(failures) <= 4, "each dead connection fails one unit at most"
    assert all(failures), "each failure dropped its connection"
    await run_unit(tables, bump)


def test_merged_statements_number_their_parameters_in_order() -> None:
    sql = merged_sql(
        ["INSERT INTO a (x, y) SELECT * FROM unnest($1::INT[], $2::INT[])", "UPDATE b SET z = $1"],
        [2, 1],
    )
    assert sql == (
        "WITH w0 AS (INSERT INTO a (x, y) SELECT * FROM unnest($1::INT[], $2::INT[])) "
        "UPDATE b SET z = $3"
    )
