"""The dispatcher's claim between two vacuums, against the same claim just after one.

Every remote moves through the dispatcher's queue (queued, then sent, then done), and on
PostgreSQL each move leaves the row's earlier version, and its index entries, dead until a
vacuum. Autovacuum comes after a fifth of the table has changed: with a million remotes kept,
two hundred thousand remotes go by between two vacuums. What the claim costs then depends on
whether it has to read what they left behind.

One process builds a throw-away database on the PostgreSQL server (migrated by the keyfob it
imports, so ``PYTHONPATH`` can point at other code), with autovacuum off for ``remotes``; it
stores ``--remotes`` remotes that went through queued, sent and done in batches of 1,000 (one
transaction per move, as the dispatcher commits them), then ``--active`` queued remotes due
now. It times ``--claims`` claims of 100 (``remotes.progress.claim_due``, each in its own unit
of work, as the dispatcher runs it; the rows stay queued), then runs ``VACUUM remotes`` and
times as many again: the baseline. Printed: the median and p90 of both, and the ratio.

    .venv/bin/python bench/dispatcher_claim.py --db postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/dispatcher_claim.py --quick      # 20,000 remotes instead of 100,000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from common import machine, median, percentile, ratio, run_async
from flow_parts import provision, scratch_database
from sqlalchemy import text

from keyfob.kit.clock import utcnow
from keyfob.remotes import progress
from keyfob.store.engine import Database
from keyfob.store.units import run_unit

BATCH = 1_000

_STORE = text(
    """
INSERT INTO remotes (id, fleet_id, vehicle_id, callback_id, type, body, status, last_seq,
                     phase, due_at, created_at, updated_at)
SELECT 'bench' || lpad(g::text, 12, '0'), :fleet, :vehicle, 'bench-callback', 'Horn', '{}',
       'Accepted', 1, :phase, CAST(:due AS timestamptz) + g * interval '1 ms', :due, :due
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
"""
)
_MOVE = text(
    """
UPDATE remotes SET phase = CAST(:phase AS varchar), due_at = due_at + interval '30 seconds',
                   command_id = CASE WHEN CAST(:phase AS varchar) = 'sent' THEN id END
WHERE id BETWEEN 'bench' || lpad(CAST(:first AS integer)::text, 12, '0')
             AND 'bench' || lpad(CAST(:last AS integer)::text, 12, '0')
"""
)

_NO_CALLBACK = text("SET LOCAL session_replication_role = replica")
"""The remotes name a callback that is not there (foreign keys unchecked): the claim reads
remotes and vehicles only."""


async def _fill(db: Database, fleet: str, vehicle: str, remotes: int, active: int) -> None:
    long_ago = utcnow() - timedelta(hours=2)
    common = {"fleet": fleet, "vehicle": vehicle}
    async with db.transaction() as conn:
        await conn.execute(text("ALTER TABLE remotes SET (autovacuum_enabled = false)"))
    for first in range(1, remotes + 1, BATCH):
        span = {"first": first, "last": min(first + BATCH - 1, remotes)}
        async with db.transaction() as conn:
            await conn.execute(_NO_CALLBACK)
            await conn.execute(_STORE, {**common, **span, "phase": "queued", "due": long_ago})
        for phase in ("sent", "done"):
            async with db.transaction() as conn:
                await conn.execute(_MOVE, {**span, "phase": phase})
    lately = utcnow() - timedelta(minutes=30)  # due, each 1 ms after the one before
    span = {"first": remotes + 1, "last": remotes + active}
    async with db.transaction() as conn:
        await conn.execute(_NO_CALLBACK)
        await conn.execute(_STORE, {**common, **span, "phase": "queued", "due": lately})


async def _claims(db: Database, count: int) -> list[float]:
    times = []
    for _ in range(count):
        now = utcnow()
        started = time.perf_counter()
        found = await run_unit(db, partial(progress.claim_due, now=now, limit=100))
        times.append(1000 * (time.perf_counter() - started))
        assert len(found) == 100, len(found)
    return times


async def _run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    tenant = await provision(url, 1)
    db = Database(url)
    try:
        vehicle = tenant["vehicles"][0][0]
        await _fill(db, tenant["fleet_id"], vehicle, args.remotes, args.active)
        await _claims(db, 3)  # connections open, statements prepared
        between = await _claims(db, args.claims)
        async with db.engine.connect() as conn:
            quiet = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await quiet.execute(text("VACUUM remotes"))
        after = await _claims(db, args.claims)
    finally:
        await db.dispose()
    return {"between": between, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="PostgreSQL server")
    parser.add_argument("--remotes", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=300)
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.remotes = 20_000
    with (
        tempfile.TemporaryDirectory() as work,
        scratch_database(args.db, Path(work)) as url,
    ):
        found = run_async(_run(url, args))
    between, after = found["between"], found["after"]
    print(machine())
    print(f"{args.remotes} remotes gone by, {args.active} due, {args.claims} claims of 100 each")
    for name, times in (("between vacuums", between), ("after VACUUM", after)):
        print(f"  {name:<16} median {median(times):7.2f} ms   p90 {percentile(times, 90):7.2f} ms")
    print(f"  ratio (between / after, medians) {ratio(median(between), median(after)):.2f}")


if __name__ == "__main__":
    main()
