"""Remote callbacks of a fleet: create, read, replace, pause/resume, delete, rotate secrets.

Services take the fleet already checked against the partner; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks import secrets
from keyfob.callbacks.attributes import batching_allowed
from keyfob.callbacks.models import callbacks
from keyfob.callbacks.schemas import CallbackSubscribe
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import is_valid_id, new_id
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.store.queries import paged
from keyfob.vocabulary import CallbackStatus, RemoteType


@dataclass(frozen=True)
class Callback:
    id: str
    fleet_id: str
    label: str | None
    subscribe: dict[str, Any]
    status: CallbackStatus
    secrets: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @property
    def remote_types(self) -> list[str]:
        return list(self.subscribe.get("remoteTypes", []))


def callback_from_row(row: Row[Any]) -> Callback:
    return Callback(
        row.id,
        row.fleet_id,
        row.label,
        row.subscribe,
        CallbackStatus(row.status),
        row.secrets,
        row.created_at,
        row.updated_at,
    )


def _types_column(types: list[RemoteType]) -> str:
    return "," + ",".join(t.value for t in types) + ","


def _batching(parsed: CallbackSubscribe) -> dict[str, int | None]:
    if parsed.batch is None or not batching_allowed(parsed.attributes):
        return {"batch_size": None, "batch_window_s": None}
    return {"batch_size": parsed.batch.size, "batch_window_s": parsed.batch.time_window}


async def create_callback(
    conn: AsyncConnection, *, fleet_id: str, parsed: CallbackSubscribe, now: datetime
) -> tuple[Callback, str]:
    """Store a new Running callback; the signing secret is returned only this once."""
    secret, stored_secrets = secrets.first_secrets(now)
    values: dict[str, Any] = {
        "id": new_id(),
        "fleet_id": fleet_id,
        "label": parsed.label,
        "subscribe": parsed.to_stored(),
        "remote_types": _types_column(parsed.remote_types),
        "status": CallbackStatus.RUNNING.value,
        **_batching(parsed),
        "secrets": stored_secrets,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(callbacks.insert().values(**values))
    return (
        Callback(
            values["id"],
            fleet_id,
            parsed.label,
            values["subscribe"],
            CallbackStatus.RUNNING,
            stored_secrets,
            now,
            now,
        ),
        secret,
    )


def check_callback_id(callback_id: str) -> None:
    if not is_valid_id(callback_id):
        raise KeyfobError(
            ErrorCode.INVALID_PATH_ID,
            f"callback id {shown(callback_id)} must match ([0-9a-fA-F]|-|_)*",
        )


def callback_not_found(callback_id: str) -> KeyfobError:
    return KeyfobError(
        ErrorCode.CALLBACK_NOT_FOUND, f"no callback {shown(callback_id)} in this fleet"
    )


async def get_callback(conn: AsyncConnection, *, fleet_id: str, callback_id: str) -> Callback:
    check_callback_id(callback_id)
    row = (
        await conn.execute(
            select(callbacks).where(
                callbacks.c.id == callback_id,
                callbacks.c.fleet_id == fleet_id,
                callbacks.c.deleted_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise callback_not_found(callback_id)
    return callback_from_row(row)


async def get_callback_by_id(conn: AsyncConnection, callback_id: str) -> Callback | None:
    row = (await conn.execute(select(callbacks).where(callbacks.c.id == callback_id))).first()
    return None if row is None else callback_from_row(row)


async def list_callbacks(
    conn: AsyncConnection,
    *,
    fleet_id: str,
    types: list[RemoteType] | None,
    page: PageRequest,
) -> tuple[int, list[Callback]]:
    where = [callbacks.c.fleet_id == fleet_id, callbacks.c.deleted_at.is_(None)]
    if types:
        where.append(or_(*(callbacks.c.remote_types.contains(f",{t.value},") for t in types)))
    total, rows = await paged(
        conn, callbacks, where, [callbacks.c.created_at, callbacks.c.id], page
    )
    return total, [callback_from_row(r) for r in rows]


async def replace_callback(
    conn: AsyncConnection, *, callback: Callback, parsed: CallbackSubscribe, now: datetime
) -> Callback:
    """PUT replaces the whole subscription; status and secrets are kept."""
    subscribe = parsed.to_stored()
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(
            label=parsed.label,
            subscribe=subscribe,
            remote_types=_types_column(parsed.remote_types),
            **_batching(parsed),
            updated_at=now,
        )
    )
    return Callback(
        callback.id,
        callback.fleet_id,
        parsed.label,
        subscribe,
        callback.status,
        callback.secrets,
        callback.created_at,
        now,
    )


async def set_status(
    conn: AsyncConnection, *, callback: Callback, status: CallbackStatus, now: datetime
) -> Callback:
    """Running or Paused; Running also ends a Failed state (decision 12)."""
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(status=status.value, updated_at=now, failed_at=None)
    )
    return Callback(
        callback.id,
        callback.fleet_id,
        callback.label,
        callback.subscribe,
        status,
        callback.secrets,
        callback.created_at,
        now,
    )


def failed_statement(*, callback_id: str, now: datetime) -> Update:
    """The callback becomes Failed (decision 12), unless it is already."""
    return (
        update(callbacks)
        .where(callbacks.c.id == callback_id, callbacks.c.status != CallbackStatus.FAILED.value)
        .values(status=CallbackStatus.FAILED.value, failed_at=now, updated_at=now)
    )


async def mark_failed(conn: AsyncConnection, *, callback_id: str, now: datetime) -> None:
    await conn.execute(failed_statement(callback_id=callback_id, now=now))


async def mark_deleted(conn: AsyncConnection, *, callback: Callback, now: datetime) -> None:
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(deleted_at=now, updated_at=now)
    )


async def rotate_secret(
    conn: AsyncConnection, *, callback: Callback, now: datetime, grace: timedelta
) -> tuple[str, datetime]:
    secret, stored = secrets.rotate(callback.secrets, now, grace)
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(secrets=stored, updated_at=now)
    )
    return secret, now + grace
