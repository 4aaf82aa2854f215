"""Writing the outbox: one notification row per event, in the transaction that records the event.

The row carries the event exactly as it will be posted, so delivery needs no join back to the
remote, and a crash between "event recorded" and "notification queued" cannot happen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.ids import new_id
from keyfob.notifications.models import notifications
from keyfob.notifications.payload import EventRecord


def notification_row(callback_id: str, event: EventRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "callback_id": callback_id,
        "remote_id": event.remote_id,
        "event_id": event.event_id,
        "seq": event.seq,
        "event": event.as_json(),
        "state": "pending",
        "attempts": 0,
        "raised_at": event.event_date,
        "due_at": now,
    }


async def enqueue(
    conn: AsyncConnection, *, callback_id: str, event: EventRecord, now: datetime
) -> None:
    await conn.execute(notifications.insert().values(**notification_row(callback_id, event, now)))
