"""The outbox as a queue: lease due notifications, grouped into the POSTs that will carry them.

Claiming happens in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
workers never take the same row; SQLite has a single writer). On PostgreSQL, while no callback
with pending rows batches or lags, ``claim_singles`` needs no transaction around its two
statements and the worker runs them in autocommit. The POST happens outside any
transaction. Recording (``ledger``) happens in a second short transaction, for many results.

A row is claimable when it is pending, due, inside the 72 h horizon, not leased (or its lease
expired: a crashed worker's rows come back), its callback is Running, and no earlier event of
the same remote is still pending on that callback, unless the claiming worker holds that
earlier event itself and will send this one only after it (``worker``) — so events of one
remote are delivered in order, while other remotes go on. A batching callback's rows are
claimed together, once ``size`` are ready or the oldest has waited ``timeWindow`` seconds; a
batch may carry consecutive events of one remote, in their order, and one claim takes every
batch that is ready.

A user-face callback has no ``batchNotify``: its messages go one per POST while the receiver
keeps up, because the consumers of that face do not read arrays. Once it lags (its oldest
undelivered message has waited ``USER_BACKLOG_AFTER``, one retry delay: the receiver failed,
or the callback was paused) every claim sends what is due in batches of up to
``USER_BATCH_SIZE``, as JSON arrays (decisions 13 and 30), until the backlog is gone.

A claim costs what it takes, not what waits: it reads pending rows off partial indexes in the
order it wants them and stops at its limit, and the statements are built once, here.

    pending ──claim──► leased ──2XX──► delivered
       ▲                 │ failure
       └──Retry(at)──────┤──► abandoned (retries ran out)     (replay puts a row back)
                         └──► expired   (72 h horizon; the callback becomes Failed)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.models import Face, callbacks
from keyfob.notifications.models import notifications
from keyfob.notifications.policy import HORIZON
from keyfob.store.queries import one_of, unindexed
from keyfob.store.schema import UtcDateTime
from keyfob.vocabulary import CallbackStatus

_IDS_PER_STATEMENT = 500
"""Rows named in one ``IN (...)``: far below every driver's parameter limit."""

USER_BATCH_SIZE = 100
"""The user face's bucket: at most this many messages in one array (spec §3.2)."""
USER_BACKLOG_AFTER = timedelta(seconds=10)
"""A user callback whose oldest undelivered message is this old is in backlog."""


class Claimed(NamedTuple):
    """A leased row (a tuple: built by the thousand, straight from result rows).

    ``event`` is the stored record's JSON text: it is parsed when the POST is prepared, after
    the claim's transaction, which on SQLite holds the one connection everyone shares.
    """

    id: str
    callback_id: str
    remote_id: str
    seq: int
    event: str
    attempts: int
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class Target:
    """A callback as delivery needs it; ``subscribe`` is the stored body's JSON text.

    The text doubles as the body's version: a worker that parsed it once reuses the result
    until the text changes, however quickly a PUT follows the previous write.
    """

    id: str
    fleet_id: str | None
    subscribe: str
    secrets: list[dict[str, Any]]
    updated_at: datetime
    face: str = Face.FLEET.value


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST: a callback and the notifications it carries, in order.

    ``contexts`` is filled on the user face only: each row's stored ``context`` (JSON text or
    ``None``), what its ``Message`` needs of the remote beyond the event.
    """

    target: Target
    rows: list[Claimed]
    contexts: dict[str, str | None] = field(default_factory=dict)


_PENDING: ColumnElement[str] = literal_column("'pending'")


def pending(table: Any = notifications) -> ColumnElement[bool]:
    """``state = 'pending'`` spelled with the literal, so the partial indexes apply.

    A bound parameter would hide the value from SQLite's planner (and from PostgreSQL's generic
    plans), and both would then fall back to reading every row.
    """
    clause: ColumnElement[bool] = table.c.state == _PENDING
    return clause


_NOW = bindparam("now", type_=UtcDateTime())
_OLDEST = bindparam("oldest", type_=UtcDateTime())  # now - HORIZON
_RUNNING = and_(
    callbacks.c.status == CallbackStatus.RUNNING.value, callbacks.c.deleted_at.is_(None)
)


def _claimable(*, batched: bool = False) -> ColumnElement[bool]:
    """Due, free rows inside the horizon whose remote has no earlier event in the way.

    One event per POST: any earlier pending event of the remote is in the way. In a batch an
    earlier event that is itself ready travels in the same POST, ahead of this one (batches are
    ordered by ``raised_at, seq``), so only an earlier event that is not ready (retry not due,
    leased) or that would be ordered after this one (replayed later) is in the way. Rows past
    the horizon are left to ``expire_overdue``.
    """
    earlier = notifications.alias("earlier")
    in_the_way = [
        # Only this condition and the next may reach an index: the probe reads the remote's
        # few rows through ix_notifications_remote_seq, whatever the statistics say. Planners
        # that believed a quiet minute's statistics read every pending row of the callback, or
        # of all, once per candidate: 40-125 ms claims instead of about 2 (docs/benchmarks.md,
        # 5 December). The callback and the state are hidden from them.
        earlier.c.remote_id == notifications.c.remote_id,
        earlier.c.seq < notifications.c.seq,
        unindexed(earlier.c.callback_id) == notifications.c.callback_id,
        unindexed(earlier.c.state) == _PENDING,
    ]
    if not batched:
        # An earlier event that this worker holds is not in the way: the worker sends the
        # later one once the earlier one's POST has succeeded (``worker`` chains them), so a
        # remote's events follow each other without waiting for the record in between.
        in_the_way.append(
            or_(
                earlier.c.lease_owner.is_(None),
                earlier.c.lease_owner != bindparam("owner"),
                earlier.c.lease_until < _NOW,
            )
        )
    if batched:
        in_the_way.append(
            or_(
                earlier.c.due_at > _NOW,
                earlier.c.lease_until >= _NOW,
                earlier.c.raised_at > notifications.c.raised_at,
            )
        )
    return and_(
        pending(),
        notifications.c.due_at <= _NOW,
        notifications.c.raised_at >= _OLDEST,
        or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < _NOW),
        ~exists().where(*in_the_way),
    )


CLAIMED_COLUMNS = (
    notifications.c.id,
    notifications.c.callback_id,
    notifications.c.remote_id,
    notifications.c.seq,
    cast(notifications.c.event, Text).label("event"),
    notifications.c.attempts,
    notifications.c.raised_at,
)
"""What a claim reads of each row, in ``Claimed``'s order."""

_ACTIVE = select(
    callbacks.c.id,
    callbacks.c.fleet_id,
    cast(callbacks.c.subscribe, Text),
    callbacks.c.secrets,
    callbacks.c.updated_at,
    callbacks.c.face,
    callbacks.c.batch_size,
    callbacks.c.batch_window_s,
    select(func.min(notifications.c.raised_at))
    .where(notifications.c.callback_id == callbacks.c.id, pending())
    .scalar_subquery(),
).where(
    _RUNNING,
    exists().where(notifications.c.callback_id == callbacks.c.id, pending()),
)
"""Running callbacks with anything pending, all delivery needs of them, and their oldest row."""

_SINGLES = (
    update(notifications)
    .where(
        notifications.c.id.in_(
            select(notifications.c.id)
            .join(callbacks, callbacks.c.id == notifications.c.callback_id)
            .where(
                _claimable(),
                _RUNNING,
                callbacks.c.batch_size.is_(None),
                # A user callback in backlog sends arrays: what its batches held back (later
                # events of their remotes) waits for the next batch, not for a single POST.
                notifications.c.callback_id.not_in(bindparam("backlog", expanding=True)),
            )
            .order_by(notifications.c.due_at, notifications.c.raised_at, notifications.c.seq)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True, of=notifications)
            .correlate(None)
        )
    )
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"))
    .returning(*CLAIMED_COLUMNS, notifications.c.due_at)
)
"""Lease the first due rows of callbacks that post one event each, in one statement."""

_BATCH_ROWS = (
    select(*CLAIMED_COLUMNS)
    .where(_claimable(batched=True), notifications.c.callback_id == bindparam("callback_id"))
    .order_by(notifications.c.raised_at, notifications.c.seq)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=notifications)
)

_LEASE = (
    update(notifications)
    .where(one_of(notifications.c.id, "ids"))
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"))
)

_LOCK = (
    select(callbacks.c.id)
    .where(callbacks.c.id == bindparam("callback_id"), _RUNNING)
    # NO KEY UPDATE: claimers exclude each other, while the key-share locks that inserts
    # referencing the callback take (a recorded attempt, an accepted remote) do not get
    # in the way; FOR UPDATE would make a claim skip the callback whenever one is under way.
    .with_for_update(skip_locked=True, key_share=True)
)


_TARGETS = select(*_ACTIVE.selected_columns[:6]).where(one_of(callbacks.c.id, "ids"))


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """``ids`` in slices small enough for one ``IN (...)``."""
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        yield list(ids[start : start + _IDS_PER_STATEMENT])


@dataclass(frozen=True, slots=True)
class _Active:
    """A Running callback with pending rows, and how it batches (``size`` None: it does not)."""

    target: Target
    size: int | None
    window: timedelta
    oldest: datetime


async def active_callbacks(conn: AsyncConnection) -> list[_Active]:
    """Running callbacks that have anything pending, oldest waiting first."""
    found = [
        _Active(Target(*r[:6]), r[6], timedelta(seconds=r[7] or 0), r[8])
        for r in (await conn.execute(_ACTIVE)).all()
    ]
    return sorted(found, key=lambda c: c.oldest)


def _in_backlog(callback: _Active, now: datetime) -> bool:
    return callback.target.face == Face.USER and callback.oldest <= now - USER_BACKLOG_AFTER


_CONTEXTS = select(notifications.c.id, cast(notifications.c.context, Text)).where(
    one_of(notifications.c.id, "ids")
)


async def _contexts(conn: AsyncConnection, ids: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for chunk in chunks(ids):
        found.update({row[0]: row[1] for row in (await conn.execute(_CONTEXTS, {"ids": chunk}))})
    return found


async def _claim_singles(
    conn: AsyncConnection, params: dict[str, Any], limit: int
) -> list[Claimed]:
    """Lease due rows of callbacks that post one event each, in due order."""
    found = (await conn.execute(_SINGLES, {**params, "limit": limit})).all()
    ordered = sorted(found, key=lambda r: (r[7], r[6], r[3]))  # RETURNING keeps no order
    return [Claimed(*row[:7]) for row in ordered]


async def _claim_batches(
    conn: AsyncConnection,
    callback: _Active,
    params: dict[str, Any],
    room: int,
    size: int,
    window: timedelta,
) -> list[list[Claimed]]:
    """Every batch of one callback that is ready, up to ``room`` rows in all (not leased yet)."""
    if conn.dialect.name == "postgresql" and not await _lock_callback(conn, callback.target.id):
        return []
    query = {**params, "callback_id": callback.target.id, "limit": room}
    rows = [Claimed(*row) for row in (await conn.execute(_BATCH_ROWS, query)).all()]
    return ready_batches(rows, size=size, window=window, now=params["now"])


def ready_batches(
    rows: list[Claimed], *, size: int, window: timedelta, now: datetime
) -> list[list[Claimed]]:
    """Cut a callback's claimable rows (in raised order) into the batches that may leave now.

    Full batches leave at once; the last, partial one once its oldest row has waited
    ``window``. Batches of one claim are posted side by side, so a remote with an event in one
    batch has its later events held back for a later claim rather than put in the next batch,
    which could arrive first.
    """
    batches: list[list[Claimed]] = []
    current: list[Claimed] = []
    taken: set[str] = set()
    for row in rows:
        if row.remote_id in taken:
            continue
        current.append(row)
        if len(current) == size:
            batches.append(current)
            taken.update(r.remote_id for r in current)
            current = []
    if current and current[0].raised_at + window <= now:
        batches.append(current)
    return batches


async def _lock_callback(conn: AsyncConnection, callback_id: str) -> bool:
    """One worker at a time claims a callback's batches (PostgreSQL; SQLite has one writer).

    A batch may hold several events of one remote, so a second worker must not see an earlier
    event that the first one is still claiming as free and take the later ones alone. The
    status is checked again under the lock: the callback may have been paused meanwhile.
    """
    locked = await conn.execute(_LOCK, {"callback_id": callback_id})
    return locked.first() is not None


async def _targets(conn: AsyncConnection, ids: set[str]) -> dict[str, Target]:
    rows = (await conn.execute(_TARGETS, {"ids": sorted(ids)})).all()
    return {r[0]: Target(*r) for r in rows}


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    batch_limit: int | None = None,
    max_deliveries: int | None = None,
    active: list[_Active] | None = None,
) -> list[Delivery]:
    """Lease up to ``limit`` due notifications, grouped into the POSTs that will carry them.

    ``batch_limit`` caps one batch (default ``limit``): a ``size`` larger than any claim can
    take is sent in batches of that many rows. ``max_deliveries`` caps the POSTs. ``active``:
    the callbacks' look-up when the caller has just made it (``active_callbacks``).
    """
    params = _params(owner, now, lease)
    room = limit
    posts = limit if max_deliveries is None else min(limit, max_deliveries)
    if active is None:
        active = await active_callbacks(conn)
    # User callbacks in backlog first, leased at once so the singles below pass them by.
    backlog: list[list[Claimed]] = []
    for callback in active:
        if room <= 0 or posts <= 0:
            break
        if not _in_backlog(callback, now):
            continue
        size = min(USER_BATCH_SIZE, batch_limit or limit)
        found = (await _claim_batches(conn, callback, params, room, size, timedelta(0)))[:posts]
        backlog.extend(found)
        room, posts = room - sum(len(batch) for batch in found), posts - len(found)
    for ids in chunks([row.id for batch in backlog for row in batch]):
        await conn.execute(_LEASE, {**params, "ids": ids})
    singles: list[Claimed] = []
    if posts > 0 and any(c.size is None for c in active):
        in_backlog = [c.target.id for c in active if _in_backlog(c, now)]
        singles = await _claim_singles(conn, {**params, "backlog": in_backlog}, min(posts, room))
    room, posts = room - len(singles), posts - len(singles)
    batches: list[list[Claimed]] = []
    for callback in active:
        if callback.size is None:
            continue
        if room <= 0 or posts <= 0:
            break
        size = min(callback.size, batch_limit or limit)
        found = (await _claim_batches(conn, callback, params, room, size, callback.window))[:posts]
        batches.extend(found)
        room, posts = room - sum(len(batch) for batch in found), posts - len(found)
    leased = [row.id for batch in batches for row in batch]
    for ids in chunks(leased):
        await conn.execute(_LEASE, {**params, "ids": ids})
    return await _deliveries(conn, active, singles, backlog + batches)


def _params(owner: str, now: datetime, lease: timedelta) -> dict[str, Any]:
    return {"now": now, "oldest": now - HORIZON, "owner": owner, "until": now + lease}


def posts_singly(active: list[_Active], now: datetime) -> bool:
    """Whether ``claim_singles`` can take what ``active`` has due: no callback batches and
    none is in backlog."""
    return not any(c.size is not None or _in_backlog(c, now) for c in active)


async def claim_singles(
    conn: AsyncConnection,
    active: list[_Active],
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    max_deliveries: int | None = None,
) -> list[Delivery]:
    """``claim`` for callbacks that all post one event at a time (``posts_singly``), given
    their look-up (``active_callbacks``): the lease is one statement.

    Its statements need no transaction around them: the look-up of active callbacks only
    reads, and the lease is one statement, which locks, checks and leases its rows at once.
    On a connection in autocommit (PostgreSQL) that saves the ``BEGIN`` and ``COMMIT`` round
    trips of a claim, on the path of every event to its receiver.
    """
    if not active:
        return []
    params = _params(owner, now, lease)
    posts = limit if max_deliveries is None else min(limit, max_deliveries)
    singles = await _claim_singles(conn, {**params, "backlog": []}, posts)
    return await _deliveries(conn, active, singles, [])


async def _deliveries(
    conn: AsyncConnection,
    active: list[_Active],
    singles: list[Claimed],
    batches: list[list[Claimed]],
) -> list[Delivery]:
    """The POSTs that the leased rows make, with what each needs of its callback."""
    if not singles and not batches:
        return []
    targets = {c.target.id: c.target for c in active}
    missing = {r.callback_id for r in singles} - targets.keys()
    if missing:  # resumed between the two reads (PostgreSQL reads each statement afresh)
        targets.update(await _targets(conn, missing))
    deliveries = [Delivery(targets[r.callback_id], [r]) for r in singles]
    deliveries.extend(Delivery(targets[batch[0].callback_id], batch) for batch in batches)
    user_rows = [r.id for d in deliveries if d.target.face == Face.USER for r in d.rows]
    if user_rows:
        contexts = await _contexts(conn, user_rows)
        for delivery in deliveries:
            if delivery.target.face == Face.USER:
                delivery.contexts.update({r.id: contexts.get(r.id) for r in delivery.rows})
    return deliveries


async def queue_stats(conn: AsyncConnection, *, now: datetime) -> tuple[int, float]:
    """Pending rows and the age in seconds of the oldest one that is due."""
    row = (
        await conn.execute(select(func.count(), func.min(notifications.c.due_at)).where(pending()))
    ).one()
    oldest = row[1]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None and oldest <= now else 0.0
    return int(row[0]), age
