"""Migration 0012: a remote's new versions stay on the page of the old ones, on PostgreSQL.

The dispatcher rewrites a remote soon after its insert. What a user would notice without the
room that 0012 keeps on each page: every such rewrite lands on another page, which is then
read, dirtied and logged as well; at saturation, scaled out, about one remote in twenty fewer
a second (``docs/benchmarks.md``, 7 December). A copy of the table without that room shows
what the check tells apart.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store.engine import Database

pytestmark = pytest.mark.postgres

ROWS = 400

_STORE = """
INSERT INTO {table} (id, fleet_id, vehicle_id, callback_id, type, body, status, last_seq,
                     phase, due_at, created_at, updated_at)
SELECT 'r' || lpad(g::text, 4, '0'), 'fleet', 'vehicle', 'callback', 'Horn', '{{}}',
       'Accepted', 1, 'queued', now(), now(), now()
FROM generate_series(1, {rows}) g
"""
# What the dispatcher does to a remote it has sent, here to one remote in four.
_SEND = """
UPDATE {table} SET phase = 'sent', status = 'Pending', last_seq = 2, command_id = id,
                   due_at = due_at + interval '30 seconds', updated_at = now()
WHERE right(id, 4)::int % 4 = 0
"""
_BLOCKS = "SELECT id, (ctid::text::point)[0]::int FROM {table} ORDER BY id"


async def stayed(conn: AsyncConnection, table: str) -> float:
    """The share of the rewritten rows whose new version is on the old one's page."""
    await conn.execute(text("SET LOCAL session_replication_role = replica"))  # no parents
    await conn.execute(text(_STORE.format(table=table, rows=ROWS)))
    before = {r[0]: r[1] for r in await conn.execute(text(_BLOCKS.format(table=table)))}
    await conn.execute(text(_SEND.format(table=table)))
    after = {r[0]: r[1] for r in await conn.execute(text(_BLOCKS.format(table=table)))}
    sent = [key for key in before if int(key[1:]) % 4 == 0]
    return sum(after[key] == before[key] for key in sent) / len(sent)


async def test_a_remotes_new_versions_stay_on_its_page(pg: Database) -> None:
    async with pg.transaction() as conn:
        assert await stayed(conn, "remotes") > 0.9


async def test_without_the_room_they_move(pg: Database) -> None:
    async with pg.transaction() as conn:
        await conn.execute(text("CREATE TEMPORARY TABLE full_pages (LIKE remotes)"))
        assert await stayed(conn, "full_pages") < 0.2
