"""The dispatcher's database side: due remotes, the facts about them, and their steps.

Everything works on batches, so a busy dispatcher spends a handful of statements per batch of
remotes instead of a handful per remote, and every function here is a plan of steps
(``keyfob.store.units``): the dispatcher runs each batch as one unit of work, on SQLite in one
trip. The remotes it reads are ``remotes.rows.Remote``, built straight from their row tuples.
Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL inside the transaction that applies the
steps, so two dispatchers never advance the same remote; the commands are published only after
that transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, select, update
from sqlalchemy.sql.elements import BindParameter

from keyfob.auth.user_models import user_vehicles
from keyfob.callbacks.models import callbacks
from keyfob.kit.ids import new_id
from keyfob.notifications.handover import Handover, Lessee, lease_on_insert
from keyfob.notifications.models import notifications
from keyfob.notifications.outbox import notification_row
from keyfob.remotes.events import event_values
from keyfob.remotes.lifecycle import (
    PHASE_OF,
    QUEUED,
    SENT,
    UNDER_WAY,
    Facts,
    Phase,
    Step,
)
from keyfob.remotes.models import active, remote_events, remotes
from keyfob.remotes.rows import REMOTE_COLUMNS, REMOTES_AND_VEHICLES, Remote, read_remotes
from keyfob.store.queries import one_of, unindexed
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import ByKey, Execute, Fetch, Insert, Plan
from keyfob.vehicles.models import vehicle_states, wake_ups
from keyfob.vehicles.state import month_start
from keyfob.vocabulary import RemoteType

_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_NOW: BindParameter[datetime] = bindparam("now", type_=UtcDateTime)
_CLAIM = (
    select(*REMOTE_COLUMNS)
    .select_from(REMOTES_AND_VEHICLES)
    .where(active(), remotes.c.due_at <= _NOW)
    .order_by(remotes.c.due_at)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True, of=remotes)
)
_SENT = (
    select(*REMOTE_COLUMNS)
    .select_from(REMOTES_AND_VEHICLES)
    # The phase is hidden from the planner: through the (phase, due_at) index of migrations
    # 0001-0009, every sent remote's entry (and every dead one since the last vacuum) was read
    # for each batch of results.
    .where(one_of(remotes.c.command_id, "ids"), unindexed(remotes.c.phase) == Phase.SENT)
    .order_by(remotes.c.id)  # one lock order for every dispatcher
    .with_for_update(of=remotes)
)
# These two keep an IN list, planned for each call with its values; as arrays, the one plan
# made for every list (PostgreSQL's generic plan) read far more than the vehicles asked for:
# every version of the vehicles' states, which change with each status report, in a scan of
# the whole table (2 ms a call, against 0.3); every dead entry of ``ix_remotes_vehicle_phase``
# for the remotes under way (9 ms a call).
_STATES = select(
    vehicle_states.c.vehicle_id, vehicle_states.c.presence, vehicle_states.c.status
).where(vehicle_states.c.vehicle_id.in_(_IDS))
_IN_PROGRESS = select(
    remotes.c.id, remotes.c.vehicle_id, remotes.c.type, remotes.c.created_at
).where(remotes.c.vehicle_id.in_(_IDS), remotes.c.phase.in_(UNDER_WAY))
_WAKE_COUNTS = (
    select(wake_ups.c.vehicle_id, func.count().label("n"))
    .where(
        one_of(wake_ups.c.vehicle_id, "ids"), wake_ups.c.at >= bindparam("since", type_=UtcDateTime)
    )
    .group_by(wake_ups.c.vehicle_id)
)
_LINKED = select(user_vehicles.c.user_id, user_vehicles.c.vehicle_id).where(
    one_of(user_vehicles.c.vehicle_id, "ids")
)
_GONE = select(callbacks.c.id).where(
    one_of(callbacks.c.id, "ids"), callbacks.c.deleted_at.is_not(None)
)
"""The look-ups, built once: their values are ``Fetch`` parameters."""


def claim_due(*, now: datetime, limit: int) -> Plan[list[Remote]]:
    """Active remotes whose time has come, locked for this transaction."""
    rows = yield Fetch(_CLAIM, {"now": now, "limit": limit})
    return read_remotes(rows)


def sent_by_command(command_ids: list[str]) -> Plan[list[Remote]]:
    """Remotes waiting for the answers to these commands, locked for this transaction."""
    rows = yield Fetch(_SENT, {"ids": sorted(command_ids)})
    return read_remotes(rows)


def _states(vehicle_ids: set[str]) -> Plan[dict[str, Any]]:
    rows = yield Fetch(_STATES, {"ids": sorted(vehicle_ids)})
    return {r.vehicle_id: r for r in rows}


def _in_progress(vehicle_ids: set[str]) -> Plan[list[Any]]:
    if not vehicle_ids:
        return []
    rows = yield Fetch(_IN_PROGRESS, {"ids": sorted(vehicle_ids)})
    return list(rows)


def _wake_counts(vehicle_ids: set[str], since: datetime) -> Plan[dict[str, int]]:
    if not vehicle_ids:
        return {}
    rows = yield Fetch(_WAKE_COUNTS, {"ids": sorted(vehicle_ids), "since": since})
    return {r.vehicle_id: int(r.n) for r in rows}


def _linked(due: list[Remote]) -> Plan[set[tuple[str, str]]]:
    """(user, vehicle) links of the user-face remotes about to start (none on the fleet face)."""
    vehicle_ids = {d.vehicle_id for d in due if d.user_id is not None and d.phase == QUEUED}
    if not vehicle_ids:
        return set()
    rows = yield Fetch(_LINKED, {"ids": sorted(vehicle_ids)})
    return {(r.user_id, r.vehicle_id) for r in rows}


def _entitled(remote: Remote, links: set[tuple[str, str]]) -> bool:
    """Fleet face: the vehicle is still in the remote's fleet. User face: still the user's."""
    if remote.user_id is None:
        return remote.vehicle_fleet_id == remote.fleet_id
    return remote.phase != QUEUED or (remote.user_id, remote.vehicle_id) in links


def facts_for(
    due: list[Remote], *, now: datetime, short_window: timedelta
) -> Plan[tuple[dict[str, Facts], set[tuple[str, str]]]]:
    """The facts of each due remote, and the (vehicle, type) pairs already in progress."""
    vehicle_ids = {d.vehicle_id for d in due}
    states = yield from _states(vehicle_ids)
    busy = yield from _in_progress({d.vehicle_id for d in due if d.phase == QUEUED})
    sleepy = {
        d.vehicle_id
        for d in due
        if d.phase == QUEUED
        and (states.get(d.vehicle_id) is None or states[d.vehicle_id].presence != "online")
    }
    month = yield from _wake_counts(sleepy, month_start(now))
    recent = yield from _wake_counts(sleepy, now - short_window)
    links = yield from _linked(due)
    taken = {(other.vehicle_id, other.type) for other in busy}
    facts = {}
    for d in due:
        state = states.get(d.vehicle_id)
        facts[d.id] = Facts(
            type=RemoteType(d.type),
            body=d.body,
            phase=PHASE_OF[d.phase],
            deadline_at=d.deadline_at,
            presence=state.presence if state is not None else "unknown",
            status=state.status if state is not None else None,
            entitled=_entitled(d, links),
            same_action_in_progress=(d.vehicle_id, d.type) in taken,
            wake_ups_this_month=month.get(d.vehicle_id, 0),
            wake_ups_recent=recent.get(d.vehicle_id, 0),
            expires_at=d.expires_at,
        )
    return facts, taken


@dataclass(frozen=True)
class Planned:
    """A step to write for a remote, and the command id it goes out with, if any."""

    due: Remote
    step: Step
    command_id: str | None


def plan(due: Remote, step: Step) -> Planned:
    command_id = None
    if step.send_command:
        command_id = due.command_id if due.phase == SENT and due.command_id else new_id()
    return Planned(due, step, command_id)


def _event_rows(
    planned: Planned, now: datetime, gone: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    due, events = planned.due, planned.step.events
    ref = due.ref
    event_rows, notification_rows = [], []
    status, cause, feedback = due.status, due.failure_cause, due.feedback_detail
    seq = due.last_seq
    for event_type, event_status, event_cause, event_feedback in events:
        seq += 1
        row, outbox = event_values(
            ref, seq, event_type, event_status, now, event_cause, event_feedback
        )
        event_rows.append(row)
        note = notification_row(due.callback_id, outbox, now, ref.context)
        if due.callback_id in gone:  # decision 24: recorded, never delivered
            note.update(state="dropped", finished_at=now)
        notification_rows.append(note)
        status, cause, feedback = event_status, event_cause, event_feedback
    change = {
        "b_id": due.id,
        "b_status": status,
        "b_failure_cause": cause,
        "b_feedback_detail": feedback,
        "b_last_seq": seq,
        "b_phase": planned.step.phase,
        "b_due_at": planned.step.due_at,
        "b_deadline_at": planned.step.deadline_at,
        "b_command_id": planned.command_id or due.command_id,
        "b_updated_at": now,
    }
    return event_rows, notification_rows, change


_APPLY = ByKey(
    remotes,
    "id",
    (
        "status",
        "failure_cause",
        "feedback_detail",
        "last_seq",
        "phase",
        "due_at",
        "deadline_at",
        "command_id",
        "updated_at",
    ),
    prefix="b_",
)
"""The remotes' new states: their rows are locked by the claim that found them (``_CLAIM``,
``_SENT``), so on PostgreSQL one statement updates them all."""


def _deleted_user_callbacks(planned: list[Planned]) -> Plan[set[str]]:
    """User callbacks deleted while their remotes ran (decision 24; the fleet face refuses)."""
    ids = {p.due.callback_id for p in planned if p.due.user_id is not None and p.step.events}
    if not ids:
        return set()
    rows = yield Fetch(_GONE, {"ids": sorted(ids)})
    return {r.id for r in rows}


def apply(
    planned: list[Planned], *, now: datetime, lessee: Lessee | None = None
) -> Plan[Handover | None]:
    """Write the events, their notifications and the remotes' new state, all at once.

    With ``lessee`` (a delivery worker in this process), the notifications a claim could take
    are written leased to it, and returned to be handed over once the unit commits
    (``notifications.handover``).
    """
    if not planned:
        return None
    event_rows: list[dict[str, Any]] = []
    notification_rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    gone = yield from _deleted_user_callbacks(planned)
    for item in planned:
        events, notes, change = _event_rows(item, now, gone)
        event_rows.extend(events)
        notification_rows.extend(notes)
        changes.append(change)
    handover = None
    if lessee is not None and notification_rows:
        handover = yield from lease_on_insert(notification_rows, lessee, now=now)
    yield Insert([(remote_events, event_rows), (notifications, notification_rows)])
    yield _APPLY.rows(changes)
    wakes = [{"vehicle_id": p.due.vehicle_id, "at": now} for p in planned if p.step.send_wake_up]
    yield Insert([(wake_ups, wakes)])
    return handover


def hurry_waking(*, vehicle_ids: set[str], now: datetime) -> Execute:
    """Vehicles came online: their waking remotes are due now."""
    return Execute(
        update(remotes)
        .where(and_(remotes.c.vehicle_id.in_(vehicle_ids), remotes.c.phase == Phase.WAKING))
        .values(due_at=now)
    )


def retry_publish_soon(*, remote_ids: list[str], at: datetime) -> Execute:
    """Commands that could not be handed to the broker: try again at ``at`` (same id)."""
    return Execute(
        update(remotes)
        .where(remotes.c.id.in_(remote_ids), remotes.c.phase == Phase.SENT)
        .values(due_at=at)
    )
