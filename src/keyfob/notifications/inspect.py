"""The delivery log: what was sent for a callback, every attempt, and replaying.

Replaying puts a notification back in the queue as if it had just been raised (a fresh 72 h
horizon and a fresh retry budget); the event it carries keeps its original date and sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import is_valid_id
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.store.queries import paged

STATES = ("pending", "delivered", "abandoned", "expired", "dropped")
REPLAYABLE = ("delivered", "abandoned", "expired")


@dataclass(frozen=True)
class Notification:
    id: str
    remote_id: str
    seq: int
    event: dict[str, Any]
    state: str
    attempts: int
    raised_at: datetime
    due_at: datetime
    last_attempt_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    id: int
    message_id: str
    notification_ids: list[str]
    started_at: datetime
    latency_ms: int | None
    status_code: int | None
    error_class: str | None
    response_excerpt: str | None
    outcome: str


def _notification(row: Row[Any]) -> Notification:
    return Notification(
        row.id,
        row.remote_id,
        row.seq,
        row.event,
        row.state,
        row.attempts,
        row.raised_at,
        row.due_at,
        row.last_attempt_at,
        row.finished_at,
    )


def _attempt(row: Row[Any]) -> Attempt:
    return Attempt(
        row.id,
        row.message_id,
        list(row.notification_ids),
        row.started_at,
        row.latency_ms,
        row.status_code,
        row.error_class,
        row.response_excerpt,
        row.outcome,
    )


async def list_notifications(
    conn: AsyncConnection,
    *,
    callback_id: str,
    state: str | None,
    remote_id: str | None,
    page: PageRequest,
) -> tuple[int, list[Notification]]:
    where = [notifications.c.callback_id == callback_id]
    if state is not None:
        where.append(notifications.c.state == state)
    if remote_id is not None:
        where.append(notifications.c.remote_id == remote_id)
    total, rows = await paged(
        conn,
        notifications,
        where,
        [notifications.c.raised_at, notifications.c.remote_id, notifications.c.seq],
        page,
    )
    return total, [_notification(r) for r in rows]


async def get_notification(
    conn: AsyncConnection, *, callback_id: str, notification_id: str
) -> tuple[Notification, list[Attempt]]:
    if not is_valid_id(notification_id):
        raise KeyfobError(
            ErrorCode.INVALID_PATH_ID, f"{shown(notification_id)} is not a notification id"
        )
    row = (
        await conn.execute(
            select(notifications).where(
                notifications.c.id == notification_id,
                notifications.c.callback_id == callback_id,
            )
        )
    ).first()
    if row is None:
        raise KeyfobError(
            ErrorCode.NOTIFICATION_NOT_FOUND, f"no notification {shown(notification_id)}"
        )
    attempts = (
        await conn.execute(
            select(delivery_attempts)
            .where(
                delivery_attempts.c.callback_id == callback_id,
                cast(delivery_attempts.c.notification_ids, Text).contains(notification_id),
            )
            .order_by(delivery_attempts.c.started_at, delivery_attempts.c.id)
        )
    ).all()
    return _notification(row), [_attempt(a) for a in attempts]


async def list_attempts(
    conn: AsyncConnection, *, callback_id: str, page: PageRequest
) -> tuple[int, list[Attempt]]:
    where = delivery_attempts.c.callback_id == callback_id
    total, rows = await paged(
        conn,
        delivery_attempts,
        [where],
        [delivery_attempts.c.started_at, delivery_attempts.c.id],
        page,
    )
    return total, [_attempt(r) for r in rows]


def _requeue(now: datetime) -> dict[str, Any]:
    return {
        "state": "pending",
        "attempts": 0,
        "raised_at": now,
        "due_at": now,
        "finished_at": None,
        "lease_owner": None,
        "lease_until": None,
    }


async def replay_one(
    conn: AsyncConnection, *, callback_id: str, notification_id: str, now: datetime
) -> Notification:
    found, _ = await get_notification(
        conn, callback_id=callback_id, notification_id=notification_id
    )
    if found.state not in REPLAYABLE:
        raise KeyfobError(
            ErrorCode.CONFLICT,
            f"notification {notification_id} is {found.state}; only "
            f"{', '.join(REPLAYABLE)} notifications can be replayed",
        )
    await conn.execute(
        update(notifications).where(notifications.c.id == found.id).values(**_requeue(now))
    )
    replayed, _ = await get_notification(
        conn, callback_id=callback_id, notification_id=notification_id
    )
    return replayed


async def replay_failed_since(
    conn: AsyncConnection, *, callback_id: str, since: datetime, now: datetime
) -> int:
    """Every abandoned or expired notification of the callback raised at or after ``since``."""
    result = await conn.execute(
        update(notifications)
        .where(
            notifications.c.callback_id == callback_id,
            notifications.c.state.in_(("abandoned", "expired")),
            notifications.c.raised_at >= since,
        )
        .values(**_requeue(now))
    )
    return int(result.rowcount or 0)
