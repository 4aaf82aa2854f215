"""Recording a remote's progress: the event row, the remote's current status, the outbox row.

All three are written together by the caller's transaction, so the history, the status a GET
shows and the notifications a webhook receives can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.ids import new_id
from keyfob.notifications.outbox import enqueue
from keyfob.notifications.payload import EventRecord
from keyfob.remotes.models import remote_events, remotes
from keyfob.vocabulary import EventType


@dataclass(frozen=True)
class RemoteRef:
    """What an event needs to know about its remote.

    ``context`` is the user face's ``message.remote_context`` (label and own attributes),
    copied onto each notification row; ``None`` on the fleet face.
    """

    id: str
    callback_id: str
    vin: str
    type: str
    last_seq: int
    context: dict[str, Any] | None = None


def event_values(
    remote: RemoteRef,
    seq: int,
    event_type: EventType,
    status: str,
    now: datetime,
    failure_cause: str | None,
    feedback_detail: str | None,
) -> tuple[dict[str, Any], EventRecord]:
    event_id = new_id()
    row = {
        "id": event_id,
        "remote_id": remote.id,
        "seq": seq,
        "type": event_type.value,
        "status": status,
        "failure_cause": failure_cause,
        "feedback_detail": feedback_detail,
        "created_at": now,
    }
    outbox = EventRecord(
        event_id=event_id,
        remote_id=remote.id,
        seq=seq,
        vin=remote.vin,
        event_date=now,
        remote_type=remote.type,
        event_type=event_type.value,
        status=status,
        failure_cause=failure_cause,
        feedback_detail=feedback_detail,
    )
    return row, outbox


async def record_event(
    conn: AsyncConnection,
    *,
    remote: RemoteRef,
    event_type: EventType,
    status: str,
    now: datetime,
    failure_cause: str | None = None,
    feedback_detail: str | None = None,
    remote_changes: dict[str, Any] | None = None,
) -> int:
    """Append the next event of ``remote`` and queue its notification; returns its sequence."""
    seq = remote.last_seq + 1
    row, outbox = event_values(remote, seq, event_type, status, now, failure_cause, feedback_detail)
    changes = {
        "status": status,
        "failure_cause": failure_cause,
        "feedback_detail": feedback_detail,
        "last_seq": seq,
        "updated_at": now,
        **(remote_changes or {}),
    }
    await conn.execute(update(remotes).where(remotes.c.id == remote.id).values(**changes))
    await conn.execute(remote_events.insert().values(**row))
    await enqueue(
        conn, callback_id=remote.callback_id, event=outbox, now=now, context=remote.context
    )
    return seq
