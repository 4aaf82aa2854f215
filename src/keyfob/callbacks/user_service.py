"""User callbacks (§2.3): create, read, list, replace, pause/resume, delete.

Every callback of the user face is bound to the (client_id, user) pair that created it, and
every read and write here is scoped to that pair (§2.4): another user, the same user through
another OAuth client, or a fleet's callback all look like an unknown id (404). Services never
commit; deleting a callback that still carries remotes in flight is allowed (decision 24), and
what that means for their notifications is ``notifications.outbox``'s to settle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks import secrets
from keyfob.callbacks.models import Face, callbacks
from keyfob.callbacks.service import check_callback_id
from keyfob.callbacks.user_schemas import PUSH, CallbackType, UserCallbackSubscribe
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import new_id
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.store.queries import paged
from keyfob.vocabulary import CallbackStatus


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a user-face resource belongs to: an end user as seen through one OAuth client."""

    client_id: str
    user_id: str


@dataclass(frozen=True)
class UserCallback:
    id: str
    owner: Owner
    label: str | None
    subscribe: dict[str, Any]
    types: tuple[CallbackType, ...]
    status: CallbackStatus
    secrets: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @property
    def carries_remotes(self) -> bool:
        return CallbackType.REMOTE in self.types


def _types_column(types: tuple[CallbackType, ...]) -> str:
    return "," + ",".join(kind.value for kind in types) + ","


def _types_of(column: str | None) -> tuple[CallbackType, ...]:
    return tuple(CallbackType(kind) for kind in (column or "").split(",") if kind)


def user_callback_from_row(row: Row[Any]) -> UserCallback:
    return UserCallback(
        id=row.id,
        owner=Owner(row.client_id, row.user_id),
        label=row.label,
        subscribe=row.subscribe,
        types=_types_of(row.callback_types),
        status=CallbackStatus(row.status),
        secrets=row.secrets,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _owned_by(owner: Owner, *, include_deleted: bool = False) -> list[Any]:
    where = [
        callbacks.c.user_id == owner.user_id,
        callbacks.c.client_id == owner.client_id,
        callbacks.c.face == Face.USER.value,
    ]
    if not include_deleted:
        where.append(callbacks.c.deleted_at.is_(None))
    return where


def callback_not_found(callback_id: str) -> KeyfobError:
    return KeyfobError(
        ErrorCode.CALLBACK_NOT_FOUND, f"no callback {shown(callback_id)} for this user"
    )


async def create_user_callback(
    conn: AsyncConnection, *, owner: Owner, parsed: UserCallbackSubscribe, now: datetime
) -> tuple[UserCallback, str]:
    """Store a new Running callback; the signing secret is returned only this once."""
    secret, stored_secrets = secrets.first_secrets(now)
    callback = UserCallback(
        id=new_id(),
        owner=owner,
        label=parsed.label,
        subscribe=parsed.to_stored(),
        types=parsed.effective_types,
        status=CallbackStatus.RUNNING,
        secrets=stored_secrets,
        created_at=now,
        updated_at=now,
    )
    await conn.execute(
        callbacks.insert().values(
            id=callback.id,
            face=Face.USER.value,
            fleet_id=None,
            user_id=owner.user_id,
            client_id=owner.client_id,
            label=callback.label,
            subscribe=callback.subscribe,
            remote_types="",
            callback_types=_types_column(callback.types),
            status=callback.status.value,
            batch_size=None,
            batch_window_s=None,
            secrets=stored_secrets,
            created_at=now,
            updated_at=now,
        )
    )
    return callback, secret


async def get_user_callback(
    conn: AsyncConnection, *, owner: Owner, callback_id: str, include_deleted: bool = False
) -> UserCallback:
    """The owner's callback; ``include_deleted`` for reading the remotes that went through a
    callback deleted since, which stay readable (decision 24)."""
    check_callback_id(callback_id)
    where = _owned_by(owner, include_deleted=include_deleted)
    row = (
        await conn.execute(select(callbacks).where(callbacks.c.id == callback_id, *where))
    ).first()
    if row is None:
        raise callback_not_found(callback_id)
    return user_callback_from_row(row)


async def list_user_callbacks(
    conn: AsyncConnection, *, owner: Owner, types: list[CallbackType], page: PageRequest
) -> tuple[int, list[UserCallback]]:
    """The owner's callbacks, oldest first; ``types`` keeps those usable by any of them."""
    where = _owned_by(owner)
    if types:
        where.append(
            or_(*(callbacks.c.callback_types.contains(f",{kind.value},") for kind in types))
        )
    total, rows = await paged(
        conn, callbacks, where, [callbacks.c.created_at, callbacks.c.id], page
    )
    return total, [user_callback_from_row(row) for row in rows]


async def replace_user_callback(
    conn: AsyncConnection, *, callback: UserCallback, parsed: UserCallbackSubscribe, now: datetime
) -> UserCallback:
    """PUT replaces the whole subscription; status and secrets are kept."""
    changed = replace(
        callback,
        label=parsed.label,
        subscribe=parsed.to_stored(),
        types=parsed.effective_types,
        updated_at=now,
    )
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(
            label=changed.label,
            subscribe=changed.subscribe,
            callback_types=_types_column(changed.types),
            updated_at=now,
        )
    )
    return changed


async def set_user_status(
    conn: AsyncConnection, *, callback: UserCallback, status: CallbackStatus, now: datetime
) -> UserCallback:
    """Running or Paused; Running also ends a Failed state (decision 12)."""
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(status=status.value, updated_at=now, failed_at=None)
    )
    return replace(callback, status=status, updated_at=now)


async def delete_user_callback(
    conn: AsyncConnection, *, callback: UserCallback, now: datetime
) -> None:
    """Gone from every read at once, remotes in flight or not (decision 24)."""
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback.id)
        .values(deleted_at=now, updated_at=now)
    )


async def forget_push_devices(
    conn: AsyncConnection, *, callback_id: str, tokens: list[str], now: datetime
) -> bool:
    """Remove FCM tokens the push service reports unregistered from a push callback's
    ``devices``; with none left the callback is deleted (§3.2). True when it was deleted."""
    row = (
        await conn.execute(
            select(callbacks.c.subscribe)
            .where(callbacks.c.id == callback_id, callbacks.c.deleted_at.is_(None))
            .with_for_update()
        )
    ).first()
    if row is None:
        return False
    subscribe = dict(row.subscribe)
    push = dict(subscribe.get("callback", {}).get(PUSH) or {})
    gone = set(tokens)
    devices = [token for token in push.get("devices", []) if token not in gone]
    if not devices:
        await conn.execute(
            update(callbacks)
            .where(callbacks.c.id == callback_id)
            .values(deleted_at=now, updated_at=now)
        )
        return True
    push["devices"] = devices
    subscribe["callback"] = {PUSH: push}
    await conn.execute(
        update(callbacks)
        .where(callbacks.c.id == callback_id)
        .values(subscribe=subscribe, updated_at=now)
    )
    return False
