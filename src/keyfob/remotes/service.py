"""Reading remote actions, and deleting the callbacks they go through.

Accepting remotes is ``remotes.accept``: it stores them in group-committed batches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.service import get_callback, mark_deleted
from keyfob.callbacks.user_service import Owner
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import is_valid_id
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.notifications.outbox import drop_pending
from keyfob.remotes.models import active, remote_events, remotes
from keyfob.remotes.rows import REMOTE_COLUMNS, REMOTES_AND_VEHICLES, Remote, read_remotes


@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    type: str
    status: str
    failure_cause: str | None
    feedback_detail: str | None
    created_at: datetime


def _check_remote_id(remote_id: str) -> None:
    if not is_valid_id(remote_id):
        raise KeyfobError(
            ErrorCode.INVALID_PATH_ID, f"remote id {shown(remote_id)} must match ([0-9a-fA-F]|-|_)*"
        )


async def get_remote(
    conn: AsyncConnection, *, fleet_id: str, vehicle_id: str, callback_id: str, remote_id: str
) -> tuple[Remote, list[Event]]:
    _check_remote_id(remote_id)
    return await _one(
        conn,
        remote_id,
        remotes.c.fleet_id == fleet_id,
        remotes.c.vehicle_id == vehicle_id,
        remotes.c.callback_id == callback_id,
    )


async def get_user_remote(
    conn: AsyncConnection, *, owner: Owner, vehicle_id: str, callback_id: str, remote_id: str
) -> tuple[Remote, list[Event]]:
    """A remote of the user face, only if ``owner`` (the client and user) posted it."""
    _check_remote_id(remote_id)
    return await _one(
        conn,
        remote_id,
        remotes.c.user_id == owner.user_id,
        remotes.c.client_id == owner.client_id,
        remotes.c.vehicle_id == vehicle_id,
        remotes.c.callback_id == callback_id,
    )


async def _one(
    conn: AsyncConnection, remote_id: str, *where: ColumnElement[bool]
) -> tuple[Remote, list[Event]]:
    row = (
        await conn.execute(
            select(*REMOTE_COLUMNS)
            .select_from(REMOTES_AND_VEHICLES)
            .where(remotes.c.id == remote_id, *where)
        )
    ).first()
    if row is None:
        raise KeyfobError(ErrorCode.REMOTE_NOT_FOUND, f"no remote action {shown(remote_id)} here")
    events = (
        await conn.execute(
            select(remote_events)
            .where(remote_events.c.remote_id == remote_id)
            .order_by(remote_events.c.seq)
        )
    ).all()
    history = [
        Event(e.id, e.seq, e.type, e.status, e.failure_cause, e.feedback_detail, e.created_at)
        for e in events
    ]
    remote = read_remotes([row])[0]
    if history:
        # The row and the events are two reads: on PostgreSQL an event committed between them
        # would contradict the row. The status is the last event's, by construction.
        last = history[-1]
        remote = replace(
            remote,
            status=last.status,
            failure_cause=last.failure_cause,
            feedback_detail=last.feedback_detail,
        )
    return remote, history


async def list_remotes(
    conn: AsyncConnection, *, vehicle_id: str, callback_id: str, page: PageRequest
) -> tuple[int, list[Remote]]:
    where = (remotes.c.vehicle_id == vehicle_id, remotes.c.callback_id == callback_id)
    count = select(func.count()).select_from(remotes).where(*where)
    total = (await conn.execute(count)).scalar_one()
    rows = await conn.execute(
        select(*REMOTE_COLUMNS)
        .select_from(REMOTES_AND_VEHICLES)
        .where(*where)
        .order_by(remotes.c.created_at, remotes.c.id)
        .offset(page.offset)
        .limit(page.limit())
    )
    return int(total), read_remotes(rows)


async def delete_callback(
    conn: AsyncConnection, *, fleet_id: str, callback_id: str, now: datetime
) -> None:
    """B2B forbids deleting a callback that still carries a remote in progress (409)."""
    callback = await get_callback(conn, fleet_id=fleet_id, callback_id=callback_id)
    pending = (
        await conn.execute(
            select(func.count())
            .select_from(remotes)
            .where(remotes.c.callback_id == callback.id, active())
        )
    ).scalar_one()
    if pending:
        raise KeyfobError(
            ErrorCode.CALLBACK_HAS_PENDING_REMOTES,
            f"callback {callback.id} has {pending} remote(s) in progress; "
            "delete it once they are Done",
        )
    await mark_deleted(conn, callback=callback, now=now)
    # What was not delivered yet goes with the webhook the partner removed; the log keeps it.
    await drop_pending(conn, callback_id=callback.id, now=now)
