"""The outbox as a queue: claim due notifications with a lease, record what happened.

Claiming happens in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
workers never take the same row; SQLite has a single writer). The POST happens outside any
transaction. Recording happens in a second short transaction, for many results at once.

A row is claimable when it is pending, due, not leased (or its lease expired: a crashed
worker's rows come back), its callback is Running, and no earlier event of the same remote is
still pending on that callback — so events of one remote are delivered in order, while other
remotes go on. A batching callback's rows are claimed together, once ``size`` are ready or the
oldest has waited ``timeWindow`` seconds; a batch may carry consecutive events of one remote,
in their order.

    pending ──claim──► leased ──2XX──► delivered
       ▲                 │ failure
       └──Retry(at)──────┤──► abandoned (retries ran out)     (replay puts a row back)
                         └──► expired   (72 h horizon; the callback becomes Failed)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.models import callbacks
from keyfob.callbacks.service import mark_failed
from keyfob.db import UtcDateTime
from keyfob.notifications.models import delivery_attempts, notifications
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import Abandon, Decision, Delivered, Expire, Retry
from keyfob.vocabulary import CallbackStatus

HORIZON = timedelta(hours=72)


@dataclass(frozen=True)
class Claimed:
    id: str
    callback_id: str
    remote_id: str
    seq: int
    event: dict[str, Any]
    attempts: int
    raised_at: datetime


@dataclass(frozen=True)
class Target:
    """A callback as delivery needs it."""

    id: str
    fleet_id: str
    subscribe: dict[str, Any]
    secrets: list[dict[str, Any]]
    updated_at: datetime


@dataclass(frozen=True)
class Delivery:
    """One POST: a callback and the notifications it carries, in order."""

    target: Target
    rows: list[Claimed]


def _claimable(now: datetime, *, batched: bool = False) -> Any:
    """Due, free rows of Running callbacks whose remote has no earlier event in the way.

    One event per POST: any earlier pending event of the remote is in the way. In a batch an
    earlier event that is itself ready travels in the same POST, ahead of this one (batches are
    ordered by ``raised_at, seq``), so only an earlier event that is not ready (retry not due,
    leased) or that would be ordered after this one (replayed later) is in the way.
    """
    earlier = notifications.alias("earlier")
    in_the_way = [
        earlier.c.remote_id == notifications.c.remote_id,
        earlier.c.callback_id == notifications.c.callback_id,
        earlier.c.seq < notifications.c.seq,
        earlier.c.state == "pending",
    ]
    if batched:
        in_the_way.append(
            or_(
                earlier.c.due_at > now,
                earlier.c.lease_until >= now,
                earlier.c.raised_at > notifications.c.raised_at,
            )
        )
    return and_(
        notifications.c.state == "pending",
        notifications.c.due_at <= now,
        or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < now),
        callbacks.c.status == CallbackStatus.RUNNING.value,
        callbacks.c.deleted_at.is_(None),
        ~exists().where(*in_the_way),
    )


_COLUMNS = (
    notifications.c.id,
    notifications.c.callback_id,
    notifications.c.remote_id,
    notifications.c.seq,
    notifications.c.event,
    notifications.c.attempts,
    notifications.c.raised_at,
)


async def _select_rows(conn: AsyncConnection, query: Any) -> list[Claimed]:
    rows = (await conn.execute(query)).all()
    return [Claimed(*row) for row in rows]


async def _claim_single(conn: AsyncConnection, now: datetime, limit: int) -> list[Claimed]:
    query = (
        select(*_COLUMNS)
        .join(callbacks, callbacks.c.id == notifications.c.callback_id)
        .where(_claimable(now), callbacks.c.batch_size.is_(None))
        .order_by(notifications.c.due_at, notifications.c.raised_at, notifications.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=notifications)
    )
    return await _select_rows(conn, query)


async def _claim_batches(conn: AsyncConnection, now: datetime, limit: int) -> list[Claimed]:
    ready = (
        select(
            callbacks.c.id,
            callbacks.c.batch_size,
            callbacks.c.batch_window_s,
            func.count().label("waiting"),
            func.min(notifications.c.raised_at).label("oldest"),
        )
        .join(notifications, notifications.c.callback_id == callbacks.c.id)
        .where(_claimable(now, batched=True), callbacks.c.batch_size.is_not(None))
        .group_by(callbacks.c.id, callbacks.c.batch_size, callbacks.c.batch_window_s)
    )
    claimed: list[Claimed] = []
    for row in (await conn.execute(ready)).all():
        full = row.waiting >= row.batch_size
        if not full and row.oldest + timedelta(seconds=row.batch_window_s) > now:
            continue
        room = limit - len(claimed)
        if room <= 0:
            break
        if not await _lock_callback(conn, row.id):
            continue
        query = (
            select(*_COLUMNS)
            .join(callbacks, callbacks.c.id == notifications.c.callback_id)
            .where(_claimable(now, batched=True), notifications.c.callback_id == row.id)
            .order_by(notifications.c.raised_at, notifications.c.seq)
            .limit(min(room, row.batch_size))
            .with_for_update(skip_locked=True, of=notifications)
        )
        claimed.extend(await _select_rows(conn, query))
    return claimed


async def _lock_callback(conn: AsyncConnection, callback_id: str) -> bool:
    """One worker at a time claims a callback's batch (PostgreSQL; SQLite has one writer).

    A batch may hold several events of one remote, so a second worker must not see an earlier
    event that the first one is still claiming as free and take the later ones alone.
    """
    query = select(callbacks.c.id).where(callbacks.c.id == callback_id)
    locked = await conn.execute(query.with_for_update(skip_locked=True))
    return locked.first() is not None


async def _targets(conn: AsyncConnection, ids: set[str]) -> dict[str, Target]:
    rows = (
        await conn.execute(
            select(
                callbacks.c.id,
                callbacks.c.fleet_id,
                callbacks.c.subscribe,
                callbacks.c.secrets,
                callbacks.c.updated_at,
                callbacks.c.batch_size,
            ).where(callbacks.c.id.in_(ids))
        )
    ).all()
    return {r.id: Target(r.id, r.fleet_id, r.subscribe, r.secrets, r.updated_at) for r in rows}


async def claim(
    conn: AsyncConnection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Delivery]:
    """Lease up to ``limit`` due notifications, grouped into the POSTs that will carry them."""
    singles = await _claim_single(conn, now, limit)
    batched = await _claim_batches(conn, now, limit - len(singles))
    rows = singles + batched
    if not rows:
        return []
    await conn.execute(
        update(notifications)
        .where(notifications.c.id.in_([r.id for r in rows]))
        .values(lease_owner=owner, lease_until=now + lease)
    )
    targets = await _targets(conn, {r.callback_id for r in rows})
    deliveries = [Delivery(targets[r.callback_id], [r]) for r in singles]
    groups: dict[str, list[Claimed]] = {}
    for row in batched:
        groups.setdefault(row.callback_id, []).append(row)
    deliveries.extend(Delivery(targets[cid], group) for cid, group in groups.items())
    return deliveries


@dataclass(frozen=True)
class Result:
    delivery: Delivery
    message_id: str
    started_at: datetime
    outcome: Outcome
    decisions: list[Decision]  # one per row of the delivery, same order


def _row_change(decision: Decision, now: datetime) -> dict[str, Any]:
    base: dict[str, Any] = {"last_attempt_at": now, "lease_owner": None, "lease_until": None}
    if isinstance(decision, Delivered):
        return {**base, "state": "delivered", "finished_at": now}
    if isinstance(decision, Retry):
        return {**base, "state": "pending", "due_at": decision.at}
    if isinstance(decision, Abandon):
        return {**base, "state": "abandoned", "finished_at": now}
    return {**base, "state": "expired", "finished_at": now}


async def record(
    conn: AsyncConnection, *, owner: str, results: list[Result], now: datetime
) -> None:
    """Write every attempt and move every row on, in the caller's transaction."""
    if not results:
        return
    await conn.execute(
        delivery_attempts.insert(),
        [
            {
                "callback_id": r.delivery.target.id,
                "message_id": r.message_id,
                "notification_ids": [row.id for row in r.delivery.rows],
                "started_at": r.started_at,
                "latency_ms": r.outcome.latency_ms,
                "status_code": r.outcome.status_code,
                "error_class": r.outcome.error_class,
                "response_excerpt": r.outcome.response_excerpt,
                "outcome": "delivered" if r.outcome.delivered else "failed",
            }
            for r in results
        ],
    )
    changes: list[dict[str, Any]] = []
    failed_callbacks: set[str] = set()
    for result in results:
        for row, decision in zip(result.delivery.rows, result.decisions, strict=True):
            change = _row_change(decision, now)
            changes.append(
                {
                    "b_id": row.id,
                    "b_state": change["state"],
                    "b_due_at": change.get("due_at"),
                    "b_finished_at": change.get("finished_at"),
                }
            )
            if isinstance(decision, Expire):
                failed_callbacks.add(result.delivery.target.id)
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == bindparam("b_id"), notifications.c.lease_owner == owner)
        .values(
            state=bindparam("b_state"),
            # Typed: inside coalesce() the parameter does not take the column's type, and an
            # untyped datetime reaches SQLite as text with a "+00:00" suffix, which sorts after
            # the same instant stored normally: a retry would not be due on time.
            due_at=func.coalesce(
                bindparam("b_due_at", type_=UtcDateTime()), notifications.c.due_at
            ),
            finished_at=bindparam("b_finished_at"),
            attempts=notifications.c.attempts + 1,
            last_attempt_at=now,
            lease_owner=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False),
        changes,
    )
    for callback_id in failed_callbacks:
        await mark_failed(conn, callback_id=callback_id, now=now)


async def expire_overdue(conn: AsyncConnection, *, now: datetime) -> int:
    """Pending rows past the 72 h horizon that no attempt will reach in time.

    A Running callback whose notification expires undelivered becomes Failed (decision 12);
    rows held by a Paused callback simply expire.
    """
    overdue = and_(
        notifications.c.state == "pending",
        notifications.c.raised_at < now - HORIZON,
        or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < now),
    )
    running = (
        (
            await conn.execute(
                select(notifications.c.callback_id)
                .join(callbacks, callbacks.c.id == notifications.c.callback_id)
                .where(overdue, callbacks.c.status == CallbackStatus.RUNNING.value)
                .distinct()
            )
        )
        .scalars()
        .all()
    )
    result = await conn.execute(
        update(notifications)
        .where(overdue)
        .values(state="expired", finished_at=now, lease_owner=None, lease_until=None)
    )
    for callback_id in running:
        await mark_failed(conn, callback_id=callback_id, now=now)
    return int(result.rowcount or 0)


async def queue_stats(conn: AsyncConnection, *, now: datetime) -> tuple[int, float]:
    """Pending rows and the age in seconds of the oldest one that is due."""
    row = (
        await conn.execute(
            select(func.count(), func.min(notifications.c.due_at)).where(
                notifications.c.state == "pending"
            )
        )
    ).one()
    oldest = row[1]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None and oldest <= now else 0.0
    return int(row[0]), age
