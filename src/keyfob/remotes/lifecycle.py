"""The remote lifecycle (§1.2) as a pure function: facts in, the next step out.

    queued ──rights / same action / pre-checks fail──────────────────► Done Failed <cause>
      │ vehicle online                          │ asleep or unknown
      │                                         ├─ wake budget spent ─► Done Failed TooMany…
      │                                         ▼
      │                                   waking (WakingUpVehicle; SMS sent)
      │                                         │ online         │ wake-up deadline
      ▼                                         ▼                ▼
    sent (CheckingVehicle, SentToVehicle) ◄─────┘   Done Failed VehicleConnectionTimeout
      │ result                      │ command deadline
      ▼                             ▼
    Done Success | AlreadyDone | Failed <cause>    Done Failed VehicleConnectionTimeout

Navigation announces neither Accepted nor WakingUpVehicle (its first event, CheckingVehicle,
is written when it is accepted). A ``sent`` remote that becomes due before its deadline is a
command whose publication failed (the runner then set it due again soon): it is published
again under the same id, and the vehicle answers a repeated id without acting twice.

A ``sent`` remote past its deadline still waits while the platform's link to the broker is
down, and for one command time-out after it comes back (``heard_since``): the car may have
answered meanwhile, its result queued at the broker or held in its outbox until it reconnects,
and a time-out then would report a car that acted as unreachable.

A remote may carry an expiry (``Facts.expires_at``, the ``Keyfob-Expires-At`` extension): it
is never started or sent after it. Queued or waking past it, the remote ends Done Failed
VehicleConnectionTimeout, and a wake-up's deadline is no later than it. (Its ``Keyfob-Not-Before``
needs nothing here: the remote is simply not due before then.)

The phases are ``Phase``; their values are what the ``remotes.phase`` column stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from keyfob.remotes.checks import Refusal, precheck, wake_refusal
from keyfob.vocabulary import DoneStatus, EventType, FailureCause, PendingStatus, RemoteType

EventSpec = tuple[EventType, str, str | None, str | None]


class Phase(StrEnum):
    """Where a remote stands; the value is the string stored in ``remotes.phase``."""

    QUEUED = "queued"
    WAKING = "waking"
    SENT = "sent"
    DONE = "done"


QUEUED, WAKING, SENT, DONE = Phase.QUEUED, Phase.WAKING, Phase.SENT, Phase.DONE
"""The members as module constants, for the code run once per remote: on Python 3.11 the enum
metaclass's ``__getattr__`` makes ``Phase.QUEUED`` a slow look-up (~150 ns; a global, ~20)."""

PHASE_OF = {str(p): p for p in Phase}
"""A stored string to its ``Phase`` in one dict look-up (``Phase(text)`` costs ~400 ns)."""

ACTIVE_PHASES = (Phase.QUEUED, Phase.WAKING, Phase.SENT)
"""A remote in one of these is in progress: the dispatcher still owes it a step."""

UNDER_WAY = (Phase.WAKING, Phase.SENT)
"""Active and past ``queued``: the vehicle is being woken or commanded for it, so a queued
remote of the same type for the same vehicle fails with SameActionInProgress."""


@dataclass(frozen=True)
class Limits:
    wake_up_timeout: timedelta
    command_timeout: timedelta
    month_quota: int
    short_limit: int
    low_battery_percent: float


@dataclass(frozen=True)
class Facts:
    type: RemoteType
    body: dict[str, Any]
    phase: Phase
    deadline_at: datetime | None
    presence: str
    status: dict[str, Any] | None
    entitled: bool
    """The caller still has rights on the vehicle: on the fleet face it is still in the
    remote's fleet, on the user face still linked to the remote's user (else MissingRights)."""
    same_action_in_progress: bool
    wake_ups_this_month: int
    wake_ups_recent: int
    expires_at: datetime | None = None
    """Not sent by then, the remote ends Done/Failed VehicleConnectionTimeout
    (``Keyfob-Expires-At``, an extension): it is never started or sent after it."""


@dataclass(frozen=True)
class Step:
    events: list[EventSpec] = field(default_factory=list)
    phase: Phase = Phase.DONE
    due_at: datetime | None = None
    deadline_at: datetime | None = None
    send_command: bool = False
    send_wake_up: bool = False


def failed(cause: FailureCause, pending: PendingStatus | None = None) -> Step:
    events: list[EventSpec] = []
    if pending is not None:
        events.append((EventType.PENDING, pending.value, None, None))
    events.append((EventType.DONE, DoneStatus.FAILED.value, cause.value, None))
    return Step(events=events)


def _refused(refusal: Refusal) -> Step:
    return failed(refusal.cause, refusal.pending)


def _send(facts: Facts, now: datetime, limits: Limits) -> Step:
    events: list[EventSpec] = []
    if facts.type is not RemoteType.NAVIGATION:
        events.append((EventType.PENDING, PendingStatus.CHECKING_VEHICLE.value, None, None))
    events.append((EventType.PENDING, PendingStatus.SENT_TO_VEHICLE.value, None, None))
    deadline = now + limits.command_timeout
    return Step(events, SENT, deadline, deadline, send_command=True)


def _expired(facts: Facts, now: datetime) -> bool:
    return facts.expires_at is not None and now >= facts.expires_at


def _start(facts: Facts, now: datetime, limits: Limits) -> Step:
    if _expired(facts, now):
        return failed(FailureCause.VEHICLE_CONNECTION_TIMEOUT)
    if not facts.entitled:
        return failed(FailureCause.MISSING_RIGHTS)
    if facts.same_action_in_progress:
        return failed(FailureCause.SAME_ACTION_IN_PROGRESS)
    refusal = precheck(
        facts.type, facts.body, facts.status, low_battery_percent=limits.low_battery_percent
    )
    if refusal is not None:
        return _refused(refusal)
    if facts.presence == "online":
        return _send(facts, now, limits)
    refusal = wake_refusal(
        this_month=facts.wake_ups_this_month,
        recent=facts.wake_ups_recent,
        month_quota=limits.month_quota,
        short_limit=limits.short_limit,
    )
    if refusal is not None:
        return _refused(refusal)
    events: list[EventSpec] = []
    if facts.type is not RemoteType.NAVIGATION:
        events.append((EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE.value, None, None))
    deadline = now + limits.wake_up_timeout
    if facts.expires_at is not None:  # woken in time, or not at all
        deadline = min(deadline, facts.expires_at)
    return Step(events, WAKING, deadline, deadline, send_wake_up=True)


ALWAYS = datetime.min.replace(tzinfo=UTC)
"""``heard_since`` of a platform whose link to the vehicles never broke."""


def advance(
    facts: Facts, now: datetime, limits: Limits, *, heard_since: datetime | None = ALWAYS
) -> Step:
    """The next step of a remote that is due.

    ``heard_since``: since when the platform has heard vehicles without a break (its link to
    the broker last came up), ``None`` while it hears nothing. A ``sent`` remote's deadline
    does not end it unless the link has been up for one command time-out too: answers that
    waited at the broker, or in a car's outbox, while the link was down come in first.
    """
    if facts.phase == QUEUED:
        return _start(facts, now, limits)
    deadline = facts.deadline_at or now
    if facts.phase == WAKING:
        if facts.presence == "online" and not _expired(facts, now):
            return _send(facts, now, limits)
        if now >= deadline:
            return failed(FailureCause.VEHICLE_CONNECTION_TIMEOUT)
        return Step(phase=WAKING, due_at=deadline, deadline_at=deadline)
    if now >= deadline:
        patience = (heard_since or now) + limits.command_timeout
        if now >= patience:
            return failed(FailureCause.VEHICLE_CONNECTION_TIMEOUT)
        return Step(phase=SENT, due_at=patience, deadline_at=deadline)  # expired: not re-sent
    return Step(phase=SENT, due_at=deadline, deadline_at=deadline, send_command=True)
