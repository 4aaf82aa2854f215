"""Writing the outbox: one notification row per event, in the transaction that records the event.

The row carries the event exactly as it will be posted, so delivery needs no join back to the
remote, and a crash between "event recorded" and "notification queued" cannot happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.clock import isoformat
from keyfob.kit.ids import new_id
from keyfob.notifications.models import notifications


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    remote_id: str
    seq: int
    vin: str
    event_date: datetime
    remote_type: str
    event_type: str
    status: str
    failure_cause: str | None = None
    feedback_detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "remote_id": self.remote_id,
            "seq": self.seq,
            "vin": self.vin,
            "event_date": isoformat(self.event_date),
            "remote_type": self.remote_type,
            "event_type": self.event_type,
            "status": self.status,
            "failure_cause": self.failure_cause,
            "feedback_detail": self.feedback_detail,
        }


def notification_row(callback_id: str, event: OutboxEvent, now: datetime) -> dict[str, Any]:
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
    conn: AsyncConnection, *, callback_id: str, event: OutboxEvent, now: datetime
) -> None:
    await conn.execute(notifications.insert().values(**notification_row(callback_id, event, now)))
