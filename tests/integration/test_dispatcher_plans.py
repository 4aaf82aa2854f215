"""The dispatcher's two look-ups read what they need, whatever the planner's statistics say.

* Every batch of vehicle results is looked up by ``command_id`` among the sent remotes. Before
  ``ix_remotes_command``, PostgreSQL read every ``sent`` entry of the ``(phase, due_at)`` index
  for each batch, dead ones included: thousands of entries and hundreds of row visits per batch
  under load (``docs/benchmarks.md``, 6 December).
* The claim reads the active remotes whose time has come, earliest first, from
  ``ix_remotes_active_due`` in order (a plain index scan, which stops at its limit and marks
  the dead entries it passes), where the three phases on ``(phase, due_at)`` made it a bitmap
  scan of every remote queued since the last vacuum.

The statistics are taken when every remote is done, then thousands become active, and the
statements are planned both ways PostgreSQL plans a prepared statement (custom and generic);
on SQLite, by its own planner.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from delivery_flow import delivery_flow
from sqlalchemy import bindparam, text
from test_claim_plans import _index_conditions, _plan

from keyfob.kit.clock import FakeClock
from keyfob.remotes import progress
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import run_unit

REMOTES = 6000
SENT = 3000
WANTED = [f"command{n:06d}" for n in range(REMOTES - 9, REMOTES + 1)]

# The first remote, copied REMOTES times: done, each with a command of its own (the copy runs
# with foreign keys off; plans do not look at them).
_COPY = """
INSERT INTO remotes (id, fleet_id, vehicle_id, callback_id, type, label, body, status,
                     last_seq, phase, due_at, command_id, created_at, updated_at)
SELECT substr(r.id, 1, 20) || 'copy' || g.n, r.fleet_id, r.vehicle_id, r.callback_id, r.type,
       r.label, r.body, r.status, r.last_seq, 'done', NULL, 'command' || g.n, r.created_at,
       r.updated_at
FROM (SELECT * FROM remotes LIMIT 1) r, numbers g
"""

_NUMBERS = {
    "postgresql": f"SELECT to_char(g, 'FM000000') AS n FROM generate_series(1, {REMOTES}) g",
    "sqlite": f"""WITH RECURSIVE s(i) AS (
                      SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {REMOTES}
                  ) SELECT printf('%06d', i) AS n FROM s""",
}

_SEND = f"""
UPDATE remotes SET phase = 'sent', due_at = :due
WHERE command_id LIKE 'command%' AND CAST(substr(command_id, 8) AS INTEGER) > {REMOTES - SENT}
"""


def _scans_of_remotes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") == "remotes" else []
    for child in plan.get("Plans", []):
        found += _scans_of_remotes(child)
    return found


async def _sent_remotes_of_many_done(db: Database, clock: FakeClock) -> None:
    """One remote posted, REMOTES more copied as done, statistics taken, then SENT sent."""
    async with delivery_flow(db, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid, "Electric")
    numbers = _NUMBERS[db.engine.dialect.name]
    copy = _COPY.replace("numbers g", f"({numbers}) g")
    async with db.transaction() as conn:
        if db.sqlite:
            await conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        else:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(copy))
    async with db.engine.connect() as conn:
        quiet = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await quiet.execute(text("ANALYZE remotes" if db.sqlite else "VACUUM ANALYZE remotes"))
    async with db.transaction() as conn:
        due = clock.now + timedelta(seconds=30)
        sent = await conn.execute(text(_SEND).bindparams(bindparam("due", due, UtcDateTime())))
    assert sent.rowcount == SENT


async def _found(db: Database) -> list[str]:
    found = await run_unit(db, lambda: progress.sent_by_command(WANTED))
    return sorted(r.command_id or "" for r in found)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_results_find_their_remotes_by_command_on_postgresql(
    pg: Database, clock: FakeClock, mode: str
) -> None:
    await _sent_remotes_of_many_done(pg, clock)
    listed = ", ".join(f"'{command}'" for command in WANTED)
    values = {"ids": f"ARRAY[{listed}]"}  # one array parameter (``queries.one_of``)
    statement = progress._SENT.params(ids=WANTED)
    async with pg.transaction() as conn:
        plan = await _plan(conn, statement, values, mode)

    scans = _scans_of_remotes(plan)
    assert scans, json.dumps(plan, indent=1)
    for scan in scans:
        conditions = _index_conditions(scan)
        assert conditions, json.dumps(plan, indent=1)
        assert all("command_id" in c for c in conditions), json.dumps(plan, indent=1)
    assert await _found(pg) == WANTED


async def test_both_look_ups_use_their_indexes_on_sqlite(tmp_path: Path, clock: FakeClock) -> None:
    db = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
    await migrate.upgrade(db)
    try:
        await _sent_remotes_of_many_done(db, clock)
        results = progress._SENT.params(ids=WANTED)
        claim = progress._CLAIM.params(now=clock.now + timedelta(hours=1), limit=100)
        assert await _sqlite_scans(db, results) == ["ix_remotes_command"]
        assert await _sqlite_scans(db, claim) == ["ix_remotes_active_due"]
        assert await _found(db) == WANTED
    finally:
        await db.dispose()


async def _sqlite_scans(db: Database, statement: Any) -> list[str]:
    """The index each scan of ``remotes`` uses in SQLite's plan of ``statement``."""
    async with db.engine.connect() as conn:
        compiled = statement.compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        names = compiled.positiontup or []
        values = [_value(name, compiled) for name in names]
        plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(values))).all()
    details = [str(row[-1]) for row in plan]
    scans = [d for d in details if d.startswith(("SCAN remotes", "SEARCH remotes"))]
    return [d.split(" INDEX ", 1)[1].split()[0] if " INDEX " in d else d for d in scans]


def _value(name: str, compiled: Any) -> Any:
    """A compiled parameter's value, as the driver gets it: one of WANTED for the expanded
    ``ids``, a time as the column's type stores it."""
    if name.startswith("ids_"):
        return WANTED[int(name.removeprefix("ids_")) - 1]
    bind = compiled.binds[name]
    process = bind.type.bind_processor(compiled.dialect)
    return process(bind.value) if process is not None else bind.value


_CLAIM_VALUES = {"now": "now() + interval '1 hour'", "limit": "100"}


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_claim_reads_active_remotes_in_due_order_on_postgresql(
    pg: Database, clock: FakeClock, mode: str
) -> None:
    await _sent_remotes_of_many_done(pg, clock)
    async with pg.transaction() as conn:
        plan = await _plan(conn, progress._CLAIM, _CLAIM_VALUES, mode)

    scans = _scans_of_remotes(plan)
    assert [s["Node Type"] for s in scans] == ["Index Scan"], json.dumps(plan, indent=1)
    assert scans[0]["Index Name"] == "ix_remotes_active_due", json.dumps(plan, indent=1)
    early = await run_unit(pg, lambda: progress.claim_due(now=clock.now, limit=100))
    assert [r.command_id for r in early] == [None]  # the posted remote: the copies are due later
    later = clock.now + timedelta(seconds=31)
    claimed = await run_unit(pg, lambda: progress.claim_due(now=later, limit=100))
    assert len(claimed) == 100
