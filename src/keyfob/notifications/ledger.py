"""What became of leased notifications: attempts recorded, rows moved on, overdue rows expired.

The other half of the queue (``queue`` leases rows). Recording runs in short transactions of its
own, for many results at once; the common case, every row of a group delivered, is one
statement whatever the group's size, and the statements are worked out before the transaction
begins. The horizon sweep runs on its own timer, outside claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.models import callbacks
from keyfob.callbacks.service import failed_statement, mark_failed
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import HORIZON, Abandon, Decision, Delivered, Expire, Retry
from keyfob.notifications.queue import Claimed, Delivery, chunks, pending
from keyfob.store.queries import one_of
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import Execute, Insert
from keyfob.vocabulary import CallbackStatus

_NOW = bindparam("now", type_=UtcDateTime())


@dataclass(frozen=True, slots=True)
class Result:
    """One finished POST: what it carried, what came back, and what follows for each row."""

    delivery: Delivery
    message_id: str
    started_at: datetime
    outcome: Outcome
    decisions: list[Decision]  # one per row of the delivery, same order


_DELIVERED = (
    update(notifications)
    .where(
        one_of(notifications.c.id, "ids"),
        notifications.c.lease_owner == bindparam("owner"),
    )
    .values(
        state="delivered",
        finished_at=_NOW,
        attempts=notifications.c.attempts + 1,
        last_attempt_at=_NOW,
        lease_owner=None,
        lease_until=None,
    )
)
"""The common case, one statement for every delivered row of a group of results."""

_MOVED = (
    update(notifications)
    .where(
        notifications.c.id == bindparam("b_id"),
        notifications.c.lease_owner == bindparam("owner"),
    )
    .values(
        state=bindparam("b_state"),
        # Typed: inside coalesce() the parameter does not take the column's type, and an
        # untyped datetime reaches SQLite as text with a "+00:00" suffix, which sorts after
        # the same instant stored normally: a retry would not be due on time.
        due_at=func.coalesce(bindparam("b_due_at", type_=UtcDateTime()), notifications.c.due_at),
        finished_at=bindparam("b_finished_at", type_=UtcDateTime()),
        attempts=notifications.c.attempts + 1,
        last_attempt_at=_NOW,
        lease_owner=None,
        lease_until=None,
    )
)
"""Any other decision, row by row."""


def _moved(row: Claimed, decision: Decision, now: datetime) -> dict[str, Any]:
    if isinstance(decision, Retry):
        state, due_at, finished_at = "pending", decision.at, None
    else:
        state, due_at = ("abandoned" if isinstance(decision, Abandon) else "expired"), None
        finished_at = now
    return {"b_id": row.id, "b_state": state, "b_due_at": due_at, "b_finished_at": finished_at}


def _attempt(result: Result) -> dict[str, Any]:
    outcome = result.outcome
    return {
        "callback_id": result.delivery.target.id,
        "message_id": result.message_id,
        "notification_ids": [row.id for row in result.delivery.rows],
        "started_at": result.started_at,
        "latency_ms": outcome.latency_ms,
        "status_code": outcome.status_code,
        "error_class": outcome.error_class,
        "response_excerpt": outcome.response_excerpt,
        "outcome": "delivered" if outcome.delivered else "failed",
    }


def record_steps(*, owner: str, results: list[Result], now: datetime) -> list[Insert | Execute]:
    """The writes that record ``results``: every attempt, every row moved on.

    Worked out before the transaction (``units.ready``), so the write lock covers only the
    statements themselves.
    """
    if not results:
        return []
    work: list[Insert | Execute] = [Insert([(delivery_attempts, [_attempt(r) for r in results])])]
    delivered: list[str] = []
    moved: list[dict[str, Any]] = []
    failed_callbacks: set[str] = set()
    for result in results:
        for row, decision in zip(result.delivery.rows, result.decisions, strict=True):
            if isinstance(decision, Delivered):
                delivered.append(row.id)
                continue
            moved.append({**_moved(row, decision, now), "owner": owner, "now": now})
            if isinstance(decision, Expire):
                failed_callbacks.add(result.delivery.target.id)
    for ids in chunks(delivered):
        work.append(Execute(_DELIVERED, [{"ids": ids, "owner": owner, "now": now}]))
    if moved:
        work.append(Execute(_MOVED, moved))
    for callback_id in sorted(failed_callbacks):
        work.append(Execute(failed_statement(callback_id=callback_id, now=now)))
    return work


_RELEASE = (
    update(notifications)
    .where(
        one_of(notifications.c.id, "ids"),
        notifications.c.lease_owner == bindparam("owner"),
        pending(),
    )
    .values(lease_owner=None, lease_until=None)
)


async def release(conn: AsyncConnection, *, owner: str, ids: list[str]) -> None:
    """Give back rows leased and never sent (an earlier event of their remote was not
    delivered): claimable again at once, no attempt counted."""
    for chunk in chunks(ids):
        await conn.execute(_RELEASE, {"ids": chunk, "owner": owner})


async def expire_overdue(conn: AsyncConnection, *, now: datetime) -> int:
    """Pending rows past the 72 h horizon that no attempt will reach in time.

    A Running callback whose notification expires undelivered becomes Failed (decision 12);
    rows held by a Paused callback simply expire. Rows are found callback by callback through
    ``ix_notifications_callback_state`` (the ``IN`` over callbacks says so to the planner), so
    the sweep reads the overdue rows, not every pending one.
    """
    overdue = and_(
        notifications.c.callback_id.in_(select(callbacks.c.id)),
        pending(),
        notifications.c.raised_at < now - HORIZON,
        or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < now),
    )
    running = (
        await conn.execute(
            select(notifications.c.callback_id)
            .join(callbacks, callbacks.c.id == notifications.c.callback_id)
            .where(overdue, callbacks.c.status == CallbackStatus.RUNNING.value)
            .distinct()
        )
    ).scalars()
    failing = sorted(running)
    result = await conn.execute(
        update(notifications)
        .where(overdue)
        .values(state="expired", finished_at=now, lease_owner=None, lease_until=None)
    )
    for callback_id in failing:
        await mark_failed(conn, callback_id=callback_id, now=now)
    return int(result.rowcount or 0)
