"""What the event streams carry: a callback's notifications, read from the outbox after a cursor.

The streams a consumer dials itself (SSE, WebSocket and the poll cursor, an extension) carry
exactly the notifications a callback's webhook gets, one per item: on the fleet face the
``RemoteEvents`` body of that one event (``payload``), on the user face its ``Message``
(``message``, rendered by the same ``UserMessages`` the worker uses), Body attributes included.
Header and query attributes have no place on a stream and are left out.

The cursor is the notification's id. It starts with its creation time in milliseconds
(``kit.ids``), so ids order by creation, and ``ix_notifications_callback_id`` reads a callback's
rows after one. Reading never claims, leases or changes a row: a stream cannot hold back the
webhook, and the webhook's state (pending, delivered, expired) does not hide a row from a
stream. Only rows raised within the 72 h horizon are carried, as for delivery.

Each item is signed as its webhook would be (``notifications.signing``: ``msg_<id>``, the time
it was rendered, one signature per active secret of the callback) over its exact ``data``
bytes, once per row, so that a consumer holding the secret can tell keyfob's events from
forgeries. A callback without an active secret yields unsigned items. The poll cursor's page
carries no signatures (its connection is authenticated; use SSE or WebSocket to verify).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import Text, bindparam, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.attributes import render_request_parts
from keyfob.callbacks.models import Face, callbacks
from keyfob.callbacks.schemas import CallbackSubscribe, load_stored
from keyfob.callbacks.secrets import active_secrets
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.notifications import queue
from keyfob.notifications.models import notifications
from keyfob.notifications.payload import encode, remote_events_body, stored_remote_event
from keyfob.notifications.policy import HORIZON
from keyfob.notifications.signing import sign
from keyfob.notifications.user_delivery import UserMessages

CURSOR = re.compile(r"^[0-9a-f]{32}$")
PAGE = 500
"""Rows read at once when catching up; also the poll cursor's largest ``limit``."""


@dataclass(frozen=True, slots=True)
class Item:
    """One notification as a stream carries it: its id (the cursor), its JSON, and the
    ``webhook-id``/``-timestamp``/``-signature`` values over ``data`` (empty: unsigned)."""

    id: str
    data: bytes
    signature: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Row:
    """An outbox row as a stream needs it."""

    id: str
    callback_id: str
    remote_id: str
    seq: int
    event: str
    context: str | None
    raised_at: datetime


def check_cursor(value: str, where: str) -> str:
    """A notification id sent back as a cursor, or 400 in the contract's error format."""
    if not CURSOR.fullmatch(value):
        raise KeyfobError(
            ErrorCode.INVALID_QUERY,
            f"{where}: must be an event id from this stream (32 lowercase hex digits)",
        )
    return value


def id_floor(moment: float) -> str:
    """The smallest id created at ``moment`` (seconds since the epoch) or later."""
    return f"{max(int(moment * 1000), 0):012x}" + "0" * 20


_COLUMNS = (
    notifications.c.id,
    notifications.c.callback_id,
    notifications.c.remote_id,
    notifications.c.seq,
    cast(notifications.c.event, Text),
    cast(notifications.c.context, Text),
    notifications.c.raised_at,
)
_AFTER = (
    select(*_COLUMNS)
    .where(
        notifications.c.callback_id == bindparam("callback_id"),
        notifications.c.id > bindparam("after"),
        notifications.c.raised_at >= bindparam("oldest"),
    )
    .order_by(notifications.c.id)
    .limit(bindparam("limit"))
)
_RECENT_IDS = select(notifications.c.id, notifications.c.callback_id).where(
    notifications.c.callback_id.in_(bindparam("callbacks", expanding=True)),
    notifications.c.id > bindparam("after"),
)
_BY_ID = select(*_COLUMNS).where(notifications.c.id.in_(bindparam("ids", expanding=True)))
_TARGETS = select(
    callbacks.c.id,
    callbacks.c.fleet_id,
    cast(callbacks.c.subscribe, Text),
    callbacks.c.secrets,
    callbacks.c.updated_at,
    callbacks.c.face,
).where(callbacks.c.id.in_(bindparam("ids", expanding=True)))


async def rows_after(
    conn: AsyncConnection, *, callback_id: str, after: str, now: datetime, limit: int = PAGE
) -> list[Row]:
    """A callback's rows after the cursor ``after``, in id order, within the horizon."""
    found = await conn.execute(
        _AFTER,
        {"callback_id": callback_id, "after": after, "oldest": now - HORIZON, "limit": limit},
    )
    return [Row(*r) for r in found]


async def recent_ids(
    conn: AsyncConnection, *, callback_ids: Sequence[str], after: str
) -> list[tuple[str, str]]:
    """(id, callback id) of the rows after ``after`` of these callbacks: index only."""
    found: list[tuple[str, str]] = []
    for chunk in queue.chunks(sorted(callback_ids)):
        result = await conn.execute(_RECENT_IDS, {"callbacks": chunk, "after": after})
        found.extend((r[0], r[1]) for r in result)
    return found


async def rows_by_id(conn: AsyncConnection, ids: Sequence[str]) -> list[Row]:
    found: list[Row] = []
    for chunk in queue.chunks(list(ids)):
        found.extend(Row(*r) for r in await conn.execute(_BY_ID, {"ids": chunk}))
    return found


async def targets(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, queue.Target]:
    """The callbacks these rows belong to, as delivery reads them (deleted ones included)."""
    found: dict[str, queue.Target] = {}
    for chunk in queue.chunks(sorted(set(ids))):
        for r in await conn.execute(_TARGETS, {"ids": chunk}):
            found[r[0]] = queue.Target(r[0], r[1], r[2], r[3] or [], r[4], r[5])
    return found


class Renderer:
    """Renders rows into items; keeps each callback's parsed body, per version of it."""

    def __init__(self) -> None:
        self._user = UserMessages()
        self._fleet: dict[tuple[str, str], CallbackSubscribe] = {}

    def _subscribe(self, target: queue.Target) -> CallbackSubscribe:
        key = (target.id, target.subscribe)
        found = self._fleet.get(key)
        if found is None:
            if len(self._fleet) > 10_000:
                self._fleet.clear()
            found = self._fleet[key] = load_stored(json.loads(target.subscribe))
        return found

    def item(self, target: queue.Target, row: Row, now: datetime) -> Item:
        """The notification as its callback's webhook would carry it alone (Body only)."""
        if target.face == Face.USER:
            claimed = queue.Claimed(
                row.id, row.callback_id, row.remote_id, row.seq, row.event, 0, row.raised_at
            )
            made = self._user.prepare(queue.Delivery(target, [claimed], {row.id: row.context}), now)
            return _signed(target, row.id, made.body, now)
        event = stored_remote_event(json.loads(row.event))
        variables = {
            "vin": event["vin"],
            "remoteType": event["remoteType"],
            "callbackID": target.id,
            "fleetID": target.fleet_id or "",
        }
        parts = render_request_parts(self._subscribe(target).attributes, variables)
        body = encode(remote_events_body(target.id, parts.body, [event]))
        return _signed(target, row.id, body, now)


def _signed(target: queue.Target, row_id: str, data: bytes, now: datetime) -> Item:
    secrets = active_secrets(target.secrets, now)
    if not secrets:
        return Item(row_id, data)
    return Item(row_id, data, sign(secrets, f"msg_{row_id}", int(now.timestamp()), data))


def page_body(items: Sequence[Item], after: str | None) -> bytes:
    """The poll cursor's answer: the items, and the cursor to send as ``after`` next."""
    last = items[-1].id if items else after
    parts = [b'{"items":[']
    parts.append(b",".join(b'{"id":"%s","data":%s}' % (i.id.encode(), i.data) for i in items))
    parts.append(b'],"next":%s}' % orjson.dumps(last))
    return b"".join(parts)


def frame(item: Item) -> str:
    """One WebSocket text frame: ``{"id", "data"}``, and ``"signature"`` when signed."""
    if not item.signature:
        return f'{{"id":"{item.id}","data":{item.data.decode()}}}'
    signature = orjson.dumps(item.signature).decode()
    return f'{{"id":"{item.id}","data":{item.data.decode()},"signature":{signature}}}'


def sse_event(item: Item) -> bytes:
    """One SSE event; the signature values ride as extra fields, which EventSource ignores."""
    signed = b"".join(b"%s: %s\n" % (k.encode(), v.encode()) for k, v in item.signature.items())
    return b"id: %s\nevent: notification\n%sdata: %s\n\n" % (item.id.encode(), signed, item.data)
