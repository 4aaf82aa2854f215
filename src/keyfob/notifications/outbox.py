"""Writing the outbox: one notification row per event, in the transaction that records the event.

The row carries the event exactly as it will be posted, so delivery needs no join back to the
remote, and a crash between "event recorded" and "notification queued" cannot happen. On the
user face it also carries ``context`` (``message.remote_context``): the remote's label and own
attributes, which its messages are rendered with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.ids import new_ordered_id
from keyfob.notifications.models import notifications
from keyfob.notifications.payload import EventRecord


def notification_row(
    callback_id: str,
    event: EventRecord,
    now: datetime,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": new_ordered_id(),  # a remote's events keep their order on the event streams
        "callback_id": callback_id,
        "remote_id": event.remote_id,
        "event_id": event.event_id,
        "seq": event.seq,
        "event": event.as_json(),
        "context": context,
        "state": "pending",
        "attempts": 0,
        "raised_at": event.event_date,
        "due_at": now,
    }


async def enqueue(
    conn: AsyncConnection,
    *,
    callback_id: str,
    event: EventRecord,
    now: datetime,
    context: dict[str, Any] | None = None,
) -> None:
    row = notification_row(callback_id, event, now, context)
    await conn.execute(notifications.insert().values(**row))


async def drop_pending(conn: AsyncConnection, *, callback_id: str, now: datetime) -> None:
    """A deleted callback's undelivered notifications go with it; the delivery log keeps them."""
    await conn.execute(
        update(notifications)
        .where(notifications.c.callback_id == callback_id, notifications.c.state == "pending")
        .values(state="dropped", finished_at=now, lease_owner=None, lease_until=None)
    )
