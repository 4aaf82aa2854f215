"""Notifications leased in the transaction that stores them, for the worker of the same process.

The ordinary path of an event to its webhook has two hops after the event's commit: a nudge to
a delivery worker, then the worker's claim (a write transaction, which on SQLite waits for the
one write lock). A dispatcher that runs a delivery worker beside it needs neither: the unit of
work that writes a remote's events also writes their notification rows already leased to that
worker, and once it commits, the rows are handed over in memory (``Handover``) and posted at
once. Nothing else changes: the rows are in the outbox, in the transaction of their events; a
process that dies with them leased loses nothing, its leases expire and any worker claims the
rows again, as after a crash between claim and POST.

A row is leased this way only when a claim could have taken it, so the order of a remote's
events and every callback's rules still hold:

* its callback is a Running fleet callback that posts one event at a time (no
  ``batchNotify``); the user face, batching and paused callbacks keep the ordinary path;
* every earlier event of its remote still pending on that callback is either leased to the same
  worker (the worker chains the new one behind it, and gives it back if that one's outcome is
  no longer known there: ``follow``), or free and due, in which case it is leased in the same
  transaction and handed over first. An earlier event leased elsewhere, or waiting for a retry,
  sends the remote's new events the ordinary way, behind it.

On PostgreSQL the earlier rows are read ``FOR UPDATE``: a worker's claim leasing one of them at
the same moment is waited for, and its lease seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Text, and_, bindparam, cast, select, update

from keyfob.callbacks.models import Face, callbacks
from keyfob.notifications.models import notifications
from keyfob.notifications.queue import CLAIMED_COLUMNS, Claimed, Delivery, Target, pending
from keyfob.store.queries import one_of
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import Execute, Fetch, Plan
from keyfob.vocabulary import CallbackStatus

Key = tuple[str, str]
"""(callback id, remote id): the events that must reach a callback in order."""


@dataclass(frozen=True)
class Lessee:
    """Who the rows are leased to (the worker's ``owner``), and for how long."""

    owner: str
    lease: timedelta


@dataclass
class Handover:
    """What a committed unit leased to the worker of its process, in the order to post it.

    ``follow``: the keys whose earlier events were read as leased to that worker already.
    ``complete``: every notification the unit wrote is in ``deliveries``; when not, a worker
    must be nudged for the rest. ``owner``: whom the rows are leased to.
    """

    deliveries: list[Delivery] = field(default_factory=list)
    follow: set[Key] = field(default_factory=set)
    complete: bool = True
    owner: str = ""


_CALLBACKS = select(
    callbacks.c.id,
    callbacks.c.fleet_id,
    cast(callbacks.c.subscribe, Text).label("subscribe"),
    callbacks.c.secrets,
    callbacks.c.updated_at,
    callbacks.c.face,
).where(
    one_of(callbacks.c.id, "ids"),
    callbacks.c.status == CallbackStatus.RUNNING.value,
    callbacks.c.deleted_at.is_(None),
    callbacks.c.batch_size.is_(None),
    callbacks.c.face == Face.FLEET.value,
)
"""The callbacks whose rows may be leased on insert, with what delivery needs of them."""

_EARLIER = (
    select(
        *CLAIMED_COLUMNS,
        notifications.c.due_at,
        notifications.c.lease_owner,
        notifications.c.lease_until,
    )
    .where(one_of(notifications.c.remote_id, "ids"), pending())
    .order_by(notifications.c.id)
    .with_for_update(of=notifications)
)
"""The remotes' events still pending (through ``ix_notifications_remote_seq``), locked."""

_LEASE = (
    update(notifications)
    .where(and_(notifications.c.id == bindparam("l_id"), pending()))
    .values(
        lease_owner=bindparam("l_owner"),
        lease_until=bindparam("l_until", type_=UtcDateTime()),
    )
)


def _claimed(row: Any) -> Claimed:
    return Claimed(
        row.id, row.callback_id, row.remote_id, row.seq, row.event, row.attempts, row.raised_at
    )


def _claimed_new(row: dict[str, Any]) -> Claimed:
    event = orjson.dumps(row["event"]).decode()
    return Claimed(
        row["id"], row["callback_id"], row["remote_id"], row["seq"], event, 0, row["raised_at"]
    )


def lease_on_insert(rows: list[dict[str, Any]], lessee: Lessee, *, now: datetime) -> Plan[Handover]:
    """Lease ``rows`` (notification rows about to be inserted, in each remote's order) to
    ``lessee`` where the rules above allow, setting their lease columns; leases the free
    earlier events they need; returns what to hand over once the unit commits."""
    until = now + lessee.lease
    for row in rows:
        row["lease_owner"] = None
        row["lease_until"] = None
    live = [row for row in rows if row.get("state") == "pending"]  # not dropped (decision 24)
    if not live:
        return Handover()
    found = yield Fetch(_CALLBACKS, {"ids": sorted({row["callback_id"] for row in live})})
    targets = {r[0]: Target(*r) for r in found}
    eligible = [row for row in live if row["callback_id"] in targets]
    if not eligible:
        return Handover(complete=False)
    earlier_rows = yield Fetch(_EARLIER, {"ids": sorted({row["remote_id"] for row in eligible})})
    earlier: dict[Key, list[Any]] = {}
    for r in earlier_rows:
        earlier.setdefault((r.callback_id, r.remote_id), []).append(r)
    handover = Handover(complete=len(eligible) == len(live), owner=lessee.owner)
    blocked: set[Key] = set()
    to_lease: list[Any] = []
    firsts: dict[Key, list[Any]] = {}
    for key in _keys(eligible):
        free = []
        for r in sorted(earlier.get(key, []), key=lambda r: r.seq):
            if r.lease_owner == lessee.owner:
                handover.follow.add(key)
            elif (r.lease_until is None or r.lease_until < now) and r.due_at <= now:
                free.append(r)
            else:  # leased elsewhere, or waiting for its retry: the ordinary path, behind it
                blocked.add(key)
                break
        if key not in blocked:
            firsts[key] = free
            to_lease.extend(free)
    if to_lease:
        yield Execute(
            _LEASE,
            [{"l_id": r.id, "l_owner": lessee.owner, "l_until": until} for r in to_lease],
        )
    for key, free in firsts.items():
        handover.deliveries.extend(Delivery(targets[key[0]], [_claimed(r)]) for r in free)
    for row in eligible:
        key = (row["callback_id"], row["remote_id"])
        if key in blocked:
            handover.complete = False
            continue
        row["lease_owner"] = lessee.owner
        row["lease_until"] = until
        handover.deliveries.append(Delivery(targets[key[0]], [_claimed_new(row)]))
    handover.follow.difference_update(blocked)
    return handover


def _keys(rows: Iterable[dict[str, Any]]) -> list[Key]:
    return list(dict.fromkeys((row["callback_id"], row["remote_id"]) for row in rows))
