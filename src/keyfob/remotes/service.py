"""Posting and reading remote actions.

``post_remote`` is the hot path of the API: it validates everything before writing anything,
then stores the remote, its first event and that event's notification in the caller's
transaction. A refused request stores nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.service import Callback, get_callback, mark_deleted
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import is_valid_id, new_id
from keyfob.kit.paging import PageRequest
from keyfob.notifications.models import notifications
from keyfob.notifications.outbox import notification_row
from keyfob.remotes.eligibility import ensure_vehicle_can
from keyfob.remotes.events import RemoteRef, event_values
from keyfob.remotes.models import idempotency_keys, remote_events, remotes
from keyfob.remotes.schemas import RemoteBody, parse_remote_body
from keyfob.vehicles.service import Vehicle, get_vehicle
from keyfob.vocabulary import CallbackStatus, EventType, PendingStatus, RemoteType

ACTIVE_PHASES = ("queued", "waking", "sent")


@dataclass(frozen=True)
class Remote:
    id: str
    fleet_id: str
    vehicle_id: str
    callback_id: str
    type: str
    body: dict[str, Any]
    status: str
    failure_cause: str | None
    feedback_detail: str | None
    phase: str
    created_at: datetime


@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    type: str
    status: str
    failure_cause: str | None
    feedback_detail: str | None
    created_at: datetime


@dataclass(frozen=True)
class Posted:
    remote_id: str
    type: str
    replayed: bool


def _remote(row: Row[Any]) -> Remote:
    return Remote(
        row.id,
        row.fleet_id,
        row.vehicle_id,
        row.callback_id,
        row.type,
        row.body,
        row.status,
        row.failure_cause,
        row.feedback_detail,
        row.phase,
        row.created_at,
    )


def request_hash(data: object) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def first_status(remote_type: RemoteType) -> PendingStatus:
    """Navigation never reports Accepted (§1.2): its history starts at CheckingVehicle."""
    if remote_type is RemoteType.NAVIGATION:
        return PendingStatus.CHECKING_VEHICLE
    return PendingStatus.ACCEPTED


async def _idempotent_replay(
    conn: AsyncConnection, *, partner_id: str, key: str, digest: str, now: datetime, ttl: timedelta
) -> Posted | None:
    row = (
        await conn.execute(
            select(idempotency_keys, remotes.c.type)
            .join(remotes, remotes.c.id == idempotency_keys.c.remote_id)
            .where(idempotency_keys.c.partner_id == partner_id, idempotency_keys.c.key == key)
        )
    ).first()
    if row is None:
        return None
    if row.created_at <= now - ttl:
        await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.partner_id == partner_id, idempotency_keys.c.key == key
            )
        )
        return None
    if row.request_hash != digest:
        raise KeyfobError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was first used with a different request; use a new key",
        )
    return Posted(row.remote_id, row.type, replayed=True)


def _check_callback(callback: Callback, body: RemoteBody) -> None:
    if callback.status is not CallbackStatus.RUNNING:
        raise KeyfobError(
            ErrorCode.CALLBACK_NOT_RUNNING,
            f"callback {callback.id} is {callback.status.value}; "
            "PUT its status to Running before posting remotes through it",
        )
    if body.type.value not in callback.remote_types:
        raise KeyfobError(
            ErrorCode.REMOTE_TYPE_NOT_IN_CALLBACK,
            f"remote type {body.type.value} is not in this callback's remoteTypes "
            f"({', '.join(callback.remote_types)})",
        )


async def post_remote(
    conn: AsyncConnection,
    *,
    partner_id: str,
    fleet_id: str,
    vehicle_id: str,
    callback_id: str,
    data: object,
    idempotency_key: str | None,
    now: datetime,
    idempotency_ttl: timedelta = timedelta(hours=24),
) -> Posted:
    vehicle = await get_vehicle(conn, fleet_id=fleet_id, vehicle_id=vehicle_id)
    callback = await get_callback(conn, fleet_id=fleet_id, callback_id=callback_id)
    digest = ""
    if idempotency_key is not None:
        # A retry gets the first answer even if the callback was paused since: look it up
        # before judging the request again.
        digest = request_hash({"v": vehicle_id, "c": callback_id, "b": data})
        replay = await _idempotent_replay(
            conn,
            partner_id=partner_id,
            key=idempotency_key,
            digest=digest,
            now=now,
            ttl=idempotency_ttl,
        )
        if replay is not None:
            return replay
    body = parse_remote_body(data)
    _check_callback(callback, body)
    ensure_vehicle_can(vehicle.capabilities, body, motorization=vehicle.motorization)
    remote_id = await _insert(conn, vehicle=vehicle, callback=callback, body=body, now=now)
    if idempotency_key is not None:
        await conn.execute(
            idempotency_keys.insert().values(
                partner_id=partner_id,
                key=idempotency_key,
                request_hash=digest,
                remote_id=remote_id,
                created_at=now,
            )
        )
    return Posted(remote_id, body.type.value, replayed=False)


async def _insert(
    conn: AsyncConnection, *, vehicle: Vehicle, callback: Callback, body: RemoteBody, now: datetime
) -> str:
    remote_id = new_id()
    status = first_status(body.type)
    ref = RemoteRef(remote_id, callback.id, vehicle.vin, body.type.value, 0)
    event_row, outbox = event_values(ref, 1, EventType.PENDING, status.value, now, None, None)
    await conn.execute(
        remotes.insert().values(
            id=remote_id,
            fleet_id=vehicle.fleet_id,
            vehicle_id=vehicle.id,
            callback_id=callback.id,
            type=body.type.value,
            label=body.label,
            body=body.to_stored(),
            status=status.value,
            last_seq=1,
            phase="queued",
            due_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(remote_events.insert().values(**event_row))
    await conn.execute(notifications.insert().values(**notification_row(callback.id, outbox, now)))
    return remote_id


def _check_remote_id(remote_id: str) -> None:
    if not is_valid_id(remote_id):
        raise KeyfobError(
            ErrorCode.INVALID_PATH_ID, f"remote id {remote_id!r} must match ([0-9a-fA-F]|-|_)*"
        )


async def get_remote(
    conn: AsyncConnection, *, fleet_id: str, vehicle_id: str, callback_id: str, remote_id: str
) -> tuple[Remote, list[Event]]:
    _check_remote_id(remote_id)
    row = (
        await conn.execute(
            select(remotes).where(
                remotes.c.id == remote_id,
                remotes.c.fleet_id == fleet_id,
                remotes.c.vehicle_id == vehicle_id,
                remotes.c.callback_id == callback_id,
            )
        )
    ).first()
    if row is None:
        raise KeyfobError(ErrorCode.REMOTE_NOT_FOUND, f"no remote action {remote_id!r} here")
    events = (
        await conn.execute(
            select(remote_events)
            .where(remote_events.c.remote_id == remote_id)
            .order_by(remote_events.c.seq)
        )
    ).all()
    return _remote(row), [
        Event(e.id, e.seq, e.type, e.status, e.failure_cause, e.feedback_detail, e.created_at)
        for e in events
    ]


async def list_remotes(
    conn: AsyncConnection, *, vehicle_id: str, callback_id: str, page: PageRequest
) -> tuple[int, list[Remote]]:
    where = (remotes.c.vehicle_id == vehicle_id, remotes.c.callback_id == callback_id)
    total = (
        await conn.execute(select(func.count()).select_from(remotes).where(*where))
    ).scalar_one()
    rows = (
        await conn.execute(
            select(remotes)
            .where(*where)
            .order_by(remotes.c.created_at, remotes.c.id)
            .offset(page.offset)
            .limit(page.limit())
        )
    ).all()
    return total, [_remote(r) for r in rows]


async def delete_callback(
    conn: AsyncConnection, *, fleet_id: str, callback_id: str, now: datetime
) -> None:
    """B2B forbids deleting a callback that still carries a remote in progress (409)."""
    callback = await get_callback(conn, fleet_id=fleet_id, callback_id=callback_id)
    pending = (
        await conn.execute(
            select(func.count())
            .select_from(remotes)
            .where(remotes.c.callback_id == callback.id, remotes.c.phase.in_(ACTIVE_PHASES))
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
    await conn.execute(
        update(notifications)
        .where(notifications.c.callback_id == callback.id, notifications.c.state == "pending")
        .values(state="dropped", finished_at=now, lease_owner=None, lease_until=None)
    )
