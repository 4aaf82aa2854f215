"""Migration 0011 on a database that holds remotes and their deliveries, on both engines.

The upgrade drops the outbox's foreign keys (on SQLite by rebuilding three tables, copying
their rows): every event, notification and delivery attempt is still there afterwards, as it
was. The downgrade puts the keys back, and they are enforced again.
"""

from __future__ import annotations

from typing import Any

import pytest
from delivery_flow import remote_ref
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from test_migration_user_face import fresh, seed_fleet_remote  # noqa: F401 - fixture

from keyfob.kit.clock import utcnow
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.remotes.events import record_event
from keyfob.remotes.models import remote_events
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.vocabulary import EventType

_TABLES = (remote_events, notifications, delivery_attempts)


async def _history(db: Database) -> list[list[tuple[Any, ...]]]:
    async with db.read() as conn:
        return [
            [tuple(r) for r in (await conn.execute(select(t).order_by(*t.primary_key))).all()]
            for t in _TABLES
        ]


async def test_the_outbox_survives_the_upgrade_and_its_keys_come_back_down(
    fresh: Database,  # noqa: F811
) -> None:
    await migrate.upgrade(fresh, "0010")
    now = utcnow()
    async with fresh.transaction() as conn:
        _fleet, _vehicle, callback = await seed_fleet_remote(conn, now, last_seq=0)
        for status in ("Accepted", "SentToVehicle"):
            ref = await remote_ref(conn, "r1")
            await record_event(
                conn, remote=ref, event_type=EventType.PENDING, status=status, now=now
            )
        ids = (await conn.execute(select(notifications.c.id))).scalars().all()
        await conn.execute(
            insert(delivery_attempts).values(
                callback_id=callback.id,
                message_id="m1",
                notification_ids=list(ids),
                started_at=now,
                latency_ms=4,
                status_code=200,
                outcome="delivered",
            )
        )
    before = await _history(fresh)
    assert [len(rows) for rows in before] == [2, 2, 1]

    await migrate.upgrade(fresh)
    assert await migrate.current(fresh) == "0012"
    assert await _history(fresh) == before

    await migrate.downgrade(fresh, "0010")
    assert await _history(fresh) == before
    orphan = {**dict(zip(notifications.c.keys(), before[1][0], strict=True)), "id": "n-orphan"}
    with pytest.raises(IntegrityError):
        async with fresh.transaction() as conn:
            await conn.execute(insert(notifications).values(**{**orphan, "callback_id": "none"}))
    await migrate.upgrade(fresh)
    assert await _history(fresh) == before
