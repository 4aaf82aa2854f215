"""PostgreSQL plans the claim's "earlier event still pending?" probe by remote, whatever its
statistics say.

A queue's statistics are wrong about the pending set by nature: sampled in a quiet minute they
say nothing is pending, and a planner that believes them reads every pending row (of the
callback, or of all) once per candidate. Under load that made each claim cost 40-125 ms
instead of about 2 (``docs/benchmarks.md``, 5 December). Here the statistics are taken with
nothing pending, then 150 remotes' events become pending, and the claims are planned both ways
PostgreSQL plans a prepared statement (custom and generic).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_flow import delivery_flow
from sqlalchemy import BindParameter, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, visitors

from keyfob.kit.clock import FakeClock
from keyfob.notifications import queue
from keyfob.store.engine import Database

REMOTES = 12000
PENDING = 150

# The first remote's first notification, copied as four events of REMOTES more remotes:
# delivered, and without their remote and event rows (the copy runs with foreign keys off;
# plans do not look at them).
_COPY = f"""
INSERT INTO notifications (id, callback_id, remote_id, event_id, seq, event, context, state,
                           attempts, raised_at, due_at)
SELECT left(n.id, 20) || 'copy' || to_char(g, 'FM000000') || s, n.callback_id,
       left(n.remote_id, 20) || 'copy' || to_char(g, 'FM000000'), n.event_id, s, n.event,
       n.context,
       'delivered', 1, n.raised_at + g * interval '1 ms', n.due_at + g * interval '1 ms'
FROM (SELECT * FROM notifications LIMIT 1) n, generate_series(1, {REMOTES}) g,
     generate_series(1, 4) s
"""

_PEND = f"""
UPDATE notifications SET state = 'pending'
WHERE remote_id LIKE '%copy______' AND right(remote_id, 6)::int > {REMOTES - PENDING}
"""


async def many_delivered(pg: Database, clock: FakeClock) -> str:
    """A callback with one remote whose first notification is copied as ``_COPY`` says, the
    statistics taken afterwards; the callback's id."""
    async with delivery_flow(pg, clock) as flow:
        cbid: str = (await flow.callback())["callbackId"]
        await flow.remote(cbid, "Electric")
    async with pg.transaction() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(_COPY))
    async with pg.engine.connect() as conn:
        quiet = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await quiet.execute(text("VACUUM ANALYZE notifications"))
    return cbid


def _valued(statement: ClauseElement) -> ClauseElement:
    """``statement`` with a value on every parameter, so that it compiles with the list of
    callbacks in backlog rendered (empty); ``EXECUTE`` gives the values that count."""

    def valued(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.value is None:
            value: Any = [] if element.expanding else "-"
            return bindparam(element.key, value, type_=element.type, expanding=element.expanding)
        return None

    found: ClauseElement = visitors.replacement_traverse(statement, {}, valued)
    return found


def _scans_of_earlier(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if plan.get("Alias") == "earlier":
        yield plan
    for child in plan.get("Plans", []):
        yield from _scans_of_earlier(child)


def _index_conditions(plan: dict[str, Any]) -> list[str]:
    found = [plan["Index Cond"]] if "Index Cond" in plan else []
    for child in plan.get("Plans", []):
        found += _index_conditions(child)
    return found


async def _plan(
    conn: AsyncConnection, statement: ClauseElement, values: dict[str, str], mode: str
) -> dict[str, Any]:
    """The plan of ``statement`` prepared and executed with ``values`` (SQL literals)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    names = compiled.positiontup or []
    literals = ", ".join(
        values[name] if name in values else f"'{compiled.binds[name].value}'" for name in names
    )
    await conn.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
    await conn.exec_driver_sql(f"PREPARE claim_probe AS {compiled}")
    try:
        explained = await conn.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE claim_probe({literals})"
        )
        found = explained.scalar_one()
    finally:
        await conn.exec_driver_sql("DEALLOCATE claim_probe")
    document = json.loads(found) if isinstance(found, str) else found
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("claim", ["singles", "batch"])
async def test_the_probe_for_earlier_events_reads_the_remotes_rows_only(
    pg: Database, clock: FakeClock, mode: str, claim: str
) -> None:
    cbid = await many_delivered(pg, clock)
    async with pg.transaction() as conn:
        pended = await conn.execute(text(_PEND))
    assert pended.rowcount == PENDING * 4

    values = {
        "owner": "'worker'",
        "until": "now() + interval '30 seconds'",
        "now": "now() + interval '1 hour'",
        "oldest": "now() - interval '3 days'",
        "limit": "200",
        "callback_id": f"'{cbid}'",
    }
    statement = _valued(queue._SINGLES if claim == "singles" else queue._BATCH_ROWS)
    async with pg.transaction() as conn:
        plan = await _plan(conn, statement, values, mode)

    probes = list(_scans_of_earlier(plan))
    assert probes, json.dumps(plan, indent=1)
    for probe in probes:
        conditions = _index_conditions(probe)
        assert any("remote_id" in c for c in conditions), json.dumps(probe, indent=1)
