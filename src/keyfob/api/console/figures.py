"""The overview's figures for one fleet, read from the database.

``/metrics`` counts remotes accepted and finished (by type, Done status and cause) and webhook
deliveries for the whole process, every tenant together; the overview shows the same measures
for one partner's fleet, so they are counted from the rows themselves: remotes sent per minute
over the last hour, how the last day's remotes ended (status and cause), and the callbacks
whose deliveries fail. Every query starts from the fleet's callbacks, which the indexes of
``remotes`` and ``notifications`` lead with. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.models import callbacks
from keyfob.notifications.models import notifications
from keyfob.remotes.models import remote_events, remotes
from keyfob.remotes.service import Event

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAILED_STATES = ("abandoned", "expired")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    cause: str | None
    finished: bool
    count: int


@dataclass(frozen=True, slots=True)
class FailingCallback:
    callback_id: str
    label: str | None
    failed: int
    """Notifications given up (abandoned or expired) in the last day."""
    retrying: int
    """Notifications still pending after at least one failed attempt."""


@dataclass(frozen=True, slots=True)
class Overview:
    per_minute: list[tuple[str, int]]
    """``(HH:MM, remotes sent)`` for each of the last 60 minutes, oldest first (UTC)."""
    outcomes: list[Outcome]
    failing: list[FailingCallback]

    @property
    def busiest(self) -> int:
        return max((count for _, count in self.per_minute), default=0)


def _minute(conn: AsyncConnection, column: Any) -> ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", column)


async def overview(conn: AsyncConnection, *, fleet_id: str, now: datetime) -> Overview:
    fleet_callbacks = select(callbacks.c.id).where(callbacks.c.fleet_id == fleet_id)
    mine = remotes.c.callback_id.in_(fleet_callbacks.scalar_subquery())
    start = now.replace(second=0, microsecond=0) - HOUR + timedelta(minutes=1)
    minute = _minute(conn, remotes.c.created_at)
    counted = {
        row[0]: int(row[1])
        for row in await conn.execute(
            select(minute, func.count()).where(mine, remotes.c.created_at >= start).group_by(minute)
        )
    }
    per_minute = []
    for step in range(60):
        at = start + timedelta(minutes=step)
        per_minute.append((at.strftime("%H:%M"), counted.get(at.strftime("%Y-%m-%d %H:%M"), 0)))
    outcome_rows = await conn.execute(
        select(remotes.c.phase, remotes.c.status, remotes.c.failure_cause, func.count())
        .where(mine, remotes.c.created_at >= now - DAY)
        .group_by(remotes.c.phase, remotes.c.status, remotes.c.failure_cause)
    )
    outcomes = sorted(
        (Outcome(row[1], row[2], row[0] == "done", int(row[3])) for row in outcome_rows),
        key=lambda o: (not o.finished, -o.count, o.status, o.cause or ""),
    )
    return Overview(per_minute, outcomes, await _failing(conn, fleet_id=fleet_id, now=now))


async def _failing(conn: AsyncConnection, *, fleet_id: str, now: datetime) -> list[FailingCallback]:
    gave_up = notifications.c.state.in_(FAILED_STATES) & (notifications.c.raised_at >= now - DAY)
    failed = func.sum(case((gave_up, 1), else_=0))
    tried = (notifications.c.state == "pending") & (notifications.c.attempts > 0)
    retrying = func.sum(case((tried, 1), else_=0))
    rows = await conn.execute(
        select(callbacks.c.id, callbacks.c.label, failed, retrying)
        .join(notifications, notifications.c.callback_id == callbacks.c.id)
        .where(
            callbacks.c.fleet_id == fleet_id,
            callbacks.c.deleted_at.is_(None),
            notifications.c.state.in_((*FAILED_STATES, "pending")),
        )
        .group_by(callbacks.c.id, callbacks.c.label)
    )
    found = [FailingCallback(r[0], r[1], int(r[2] or 0), int(r[3] or 0)) for r in rows]
    return sorted(
        (f for f in found if f.failed or f.retrying), key=lambda f: (-f.failed, -f.retrying)
    )


@dataclass(frozen=True, slots=True)
class RecentRemote:
    id: str
    callback_id: str
    type: str
    status: str
    failure_cause: str | None
    finished: bool
    created_at: datetime


async def recent_remotes(
    conn: AsyncConnection, *, fleet_id: str, vehicle_id: str, limit: int = 10
) -> list[RecentRemote]:
    """The vehicle's latest remotes sent through this fleet's callbacks, newest first."""
    return await _recent(conn, vehicle_id, limit, remotes.c.fleet_id == fleet_id)


async def recent_user_remotes(
    conn: AsyncConnection, *, client_id: str, user_id: str, vehicle_id: str, limit: int = 10
) -> list[RecentRemote]:
    """The vehicle's latest remotes this user sent through this OAuth client, newest first."""
    return await _recent(
        conn, vehicle_id, limit, remotes.c.user_id == user_id, remotes.c.client_id == client_id
    )


async def _recent(
    conn: AsyncConnection, vehicle_id: str, limit: int, *owned: ColumnElement[bool]
) -> list[RecentRemote]:
    rows = await conn.execute(
        select(
            remotes.c.id,
            remotes.c.callback_id,
            remotes.c.type,
            remotes.c.status,
            remotes.c.failure_cause,
            remotes.c.phase,
            remotes.c.created_at,
        )
        .where(remotes.c.vehicle_id == vehicle_id, *owned)
        .order_by(remotes.c.created_at.desc(), remotes.c.id.desc())
        .limit(limit)
    )
    return [RecentRemote(r[0], r[1], r[2], r[3], r[4], r[5] == "done", r[6]) for r in rows]


async def events_after(conn: AsyncConnection, *, remote_id: str, seq: int) -> list[Event]:
    """A remote's events after ``seq``, in order: what a live timeline has not shown yet
    (one look-up on the ``(remote_id, seq)`` key; the caller checked the remote is the
    partner's)."""
    rows = await conn.execute(
        select(remote_events)
        .where(remote_events.c.remote_id == remote_id, remote_events.c.seq > seq)
        .order_by(remote_events.c.seq)
    )
    return [
        Event(e.id, e.seq, e.type, e.status, e.failure_cause, e.feedback_detail, e.created_at)
        for e in rows
    ]
