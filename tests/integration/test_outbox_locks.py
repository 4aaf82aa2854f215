"""The outbox's writes leave the callback's row alone (PostgreSQL).

A remote's progress (an event and its notification, written by the dispatcher) and a worker's
record of a delivery attempt both name the callback. While they were foreign keys, each insert
looked the callback up and locked its row in KEY SHARE mode until the transaction ended: about
nine locks per remote on one row, taken by the API, the dispatcher and the workers at once
(migration 0011). Here each write is left open in its transaction while another connection
asks for the callback's row FOR UPDATE NOWAIT, which any such lock refuses at once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from delivery_flow import delivery_flow, remote_ref
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from keyfob.kit.clock import FakeClock
from keyfob.notifications import ledger, queue
from keyfob.notifications.ledger import Result
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import Delivered
from keyfob.remotes.events import record_event
from keyfob.remotes.models import remote_events, remotes
from keyfob.store.engine import Database
from keyfob.store.units import run_steps, steps
from keyfob.vocabulary import EventType

_GRAB = text("SELECT id FROM callbacks WHERE id = :id FOR UPDATE NOWAIT")


async def _grab(db: Database, callback_id: str) -> None:
    """Lock the callback's row from another connection, refusing to wait."""
    async with db.transaction() as conn:
        found = (await conn.execute(_GRAB, {"id": callback_id})).scalar_one()
    assert found == callback_id


async def test_progress_and_attempts_do_not_lock_the_callback(
    pg: Database, clock: FakeClock
) -> None:
    async with delivery_flow(pg, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        remote_id = await flow.remote(cbid)

        # The dispatcher's write: an event of the remote and its notification, left open.
        async with pg.transaction() as conn:
            ref = await remote_ref(conn, remote_id)
            await record_event(
                conn, remote=ref, event_type=EventType.PENDING, status="SentToVehicle", now=clock()
            )
            await _grab(pg, cbid)

        # The worker's record: a claimed delivery's attempt and its row delivered, left open.
        async with pg.transaction() as conn:
            claimed = await queue.claim(
                conn, owner="w1", now=clock(), lease=timedelta(seconds=30), limit=10
            )
        assert [len(d.rows) for d in claimed] == [1]  # the Accepted; the next waits for it
        outcome = Outcome(True, 200, None, 3, "ok")
        results = [
            Result(d, f"m{n}", clock(), outcome, [Delivered()]) for n, d in enumerate(claimed)
        ]
        async with pg.transaction() as conn:
            await run_steps(
                conn, steps(ledger.record_steps(owner="w1", results=results, now=clock()))
            )
            await _grab(pg, cbid)

    async with pg.read() as conn:
        events = (
            await conn.execute(select(remote_events.c.status).order_by(remote_events.c.seq))
        ).scalars()
        states = (await conn.execute(select(notifications.c.state))).scalars().all()
        attempts = (await conn.execute(select(delivery_attempts.c.outcome))).scalars()
        assert list(events) == ["Accepted", "SentToVehicle"]
        assert sorted(states) == ["delivered", "pending"]
        assert list(attempts) == ["delivered"]


async def test_the_check_sees_a_foreign_keys_lock(pg: Database, clock: FakeClock) -> None:
    """A remote keeps its foreign keys: inserting one locks its callback, and the check says so."""
    async with delivery_flow(pg, clock) as flow:
        cbid = (await flow.callback())["callbackId"]
        await flow.remote(cbid)
        async with pg.transaction() as conn:
            first = (await conn.execute(select(remotes))).one()._asdict()
            await conn.execute(remotes.insert().values({**first, "id": "second"}))
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await _grab(pg, cbid)
