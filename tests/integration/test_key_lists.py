"""A list of keys as one parameter (``store.queries.one_of``), on both engines.

What a user would notice if it went wrong: a look-up that finds other rows than the ones
listed, a key longer than its column cut to fit and matching another row, or (on PostgreSQL)
a batch whose look-up is a new statement for every length of list: rendered, sent and planned
again each time, where the dispatcher and the delivery worker make one per batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.dialects import postgresql
from test_claim_plans import _plan, many_delivered
from test_steps_postgres import sqlalchemy_statements

from hand_offs import tables_of
from keyfob.kit.clock import FakeClock
from keyfob.notifications import ledger
from keyfob.store._sqlite import prepare_select, prepare_statement
from keyfob.store.engine import Database
from keyfob.store.queries import one_of
from keyfob.store.units import Execute, Fetch, Plan, run_unit

scratch = MetaData()
keyed = Table(
    "key_list_items",
    scratch,
    Column("id", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)
FULL = "k0123456789abcde"  # exactly as long as the column allows
_PICK = select(keyed.c.id).where(one_of(keyed.c.id, "ids")).order_by(keyed.c.id)
_BUMP = update(keyed).where(one_of(keyed.c.id, "ids")).values(n=keyed.c.n + 1)


@pytest.fixture
async def tables(db: Database) -> AsyncIterator[Database]:
    async with tables_of(db, scratch) as database:
        async with database.transaction() as conn:
            rows: list[dict[str, Any]] = [{"id": f"k{i}", "n": 0} for i in range(1, 6)]
            await conn.execute(keyed.insert(), [*rows, {"id": FULL, "n": 0}])
        yield database


def pick_and_bump(ids: list[str]) -> Plan[list[str]]:
    found = yield Fetch(_PICK, {"ids": ids})
    yield Execute(_BUMP, [{"ids": ids}])
    return [row.id for row in found]


async def counts(database: Database) -> dict[str, int]:
    async with database.read() as conn:
        return {r.id: r.n for r in await conn.execute(select(keyed.c.id, keyed.c.n))}


async def test_the_listed_keys_and_only_they_are_read_and_written(tables: Database) -> None:
    assert await run_unit(tables, lambda: pick_and_bump(["k2", "k4", "k9"])) == ["k2", "k4"]
    assert await run_unit(tables, lambda: pick_and_bump(["k4"])) == ["k4"]
    assert await run_unit(tables, lambda: pick_and_bump([])) == []
    assert await counts(tables) == {"k1": 0, "k2": 1, "k3": 0, "k4": 2, "k5": 0, FULL: 0}


async def test_a_key_longer_than_its_column_matches_nothing(tables: Database) -> None:
    longer = FULL + "-and-more"
    assert await run_unit(tables, lambda: pick_and_bump([longer])) == []
    assert await run_unit(tables, lambda: pick_and_bump([FULL])) == [FULL]
    assert (await counts(tables))[FULL] == 1


@pytest.mark.postgres
async def test_on_postgresql_the_list_goes_to_asyncpg_as_one_array(pg: Database) -> None:
    async with tables_of(pg, scratch) as database:
        async with database.transaction() as conn:
            await conn.execute(keyed.insert(), [{"id": f"k{i}", "n": 0} for i in range(1, 4)])
        seen = sqlalchemy_statements(database)
        assert await run_unit(database, lambda: pick_and_bump(["k1", "k3"])) == ["k1", "k3"]
        assert seen == [], "both steps went straight to asyncpg, not through SQLAlchemy"
        assert await counts(database) == {"k1": 1, "k2": 0, "k3": 1}


def test_on_postgresql_every_length_of_list_is_the_same_statement() -> None:
    dialect = postgresql.asyncpg.dialect()
    texts = set()
    for length in (1, 7, 300):
        ids = [f"k{i}" for i in range(length)]
        selected = prepare_select(_PICK, dialect, {"ids": ids})
        assert selected is not None
        assert selected.parameters == (ids,)
        texts.add(selected.sql)
        updated = prepare_statement(_BUMP, dialect, [{"ids": ids}])
        assert updated is not None
        assert updated[1] == [(1, ids)]
        texts.add(updated[0])
    assert len(texts) == 2, texts
    assert all("= ANY (" in sql and "::VARCHAR[]" in sql for sql in texts), texts


@pytest.mark.postgres
async def test_the_record_of_deliveries_reads_notifications_by_key_in_every_plan(
    pg: Database, clock: FakeClock
) -> None:
    await many_delivered(pg, clock)  # 48,000 notifications, analysed
    statement = ledger._DELIVERED
    values = {
        "state": "'delivered'",
        "attempts_1": "1",
        "lease_owner": "NULL",
        "lease_until": "NULL",
        "now": "now()",
        "ids": "ARRAY['a', 'b', 'c']",
        "owner": "'w'",
    }
    for mode in ("force_custom_plan", "force_generic_plan"):
        async with pg.transaction() as conn:
            plan = await _plan(conn, statement, values, mode)
        nodes = list(_nodes(plan))
        assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], plan
        assert {n.get("Index Name") for n in nodes} - {None} == {"pk_notifications"}, plan


def _nodes(plan: dict[str, Any]) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
