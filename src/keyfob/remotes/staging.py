"""What one accept transaction writes, whichever face a request came through.

Both faces' judges (``remotes.accept`` for fleets, ``remotes.accept_user`` for end users) stage
an accepted remote here: its row, its first event, that event's notification and its
Idempotency-Key. A batch may hold requests of both faces, so they share one transaction, one
set of multi-row inserts and one commit. Every remote row carries every column of both faces
(the other face's as ``None``): a multi-row insert needs the same keys in each row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keyfob.callbacks.remote_attributes import RemoteAttributes
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import new_ordered_id
from keyfob.notifications.message import remote_context
from keyfob.notifications.outbox import notification_row
from keyfob.remotes.events import RemoteRef, event_values
from keyfob.remotes.lifecycle import QUEUED
from keyfob.remotes.schemas import RemoteBody
from keyfob.vehicles.budget import WakeBudget
from keyfob.vehicles.service import Vehicle
from keyfob.vocabulary import EventType, PendingStatus, RemoteType


@dataclass(frozen=True)
class Posted:
    remote_id: str
    type: str
    replayed: bool
    budget: WakeBudget | None = None
    """The vehicle's wake-up budgets when it was accepted (``remotes.accept_budget``)."""


def request_hash(data: object) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def first_status(remote_type: RemoteType) -> PendingStatus:
    """Navigation never reports Accepted (§1.2): its history starts at CheckingVehicle."""
    if remote_type is RemoteType.NAVIGATION:
        return PendingStatus.CHECKING_VEHICLE
    return PendingStatus.ACCEPTED


@dataclass
class Known:
    """Fleets' owners and vehicles seen before. Neither is ever updated or deleted, so a
    positive lookup stays true; only unknown ids go to the database."""

    fleet_owner: dict[str, str] = field(default_factory=dict)
    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    limit: int = 100_000

    def remember(self, owners: dict[str, str], found: dict[str, Vehicle]) -> None:
        if len(self.fleet_owner) + len(self.vehicles) > self.limit:
            self.fleet_owner.clear()
            self.vehicles.clear()
        self.fleet_owner.update(owners)
        self.vehicles.update(found)


@dataclass
class Batch:
    """What one transaction will write, and what each request will be answered.

    Idempotency keys are told apart by their scope: ``(partner_id, key)`` on the fleet face,
    ``(client_id, user_id, key)`` on the user face.
    """

    now: datetime
    ttl: timedelta
    remotes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    user_keys: list[dict[str, Any]] = field(default_factory=list)
    expired_keys: list[tuple[str, str]] = field(default_factory=list)
    expired_user_keys: list[tuple[str, str, str]] = field(default_factory=list)
    fresh_keys: dict[tuple[str, ...], tuple[str, Posted]] = field(default_factory=dict)
    chosen_id: str | None = None
    """The id the acceptor chose for the request being judged, before its first attempt: a
    retry stores it under the same id, and can tell whether an attempt committed it."""

    def remote_id(self) -> str:
        """The id of the remote the request being judged will store."""
        return self.chosen_id or new_ordered_id()


def replay(
    batch: Batch, scoped: tuple[str, ...], stored: Any | None, digest: str
) -> tuple[Posted | None, bool]:
    """The first answer to a repeated Idempotency-Key, if any, and whether ``stored`` (the
    key's row from the database) has expired and must go before the key is used again.

    A key used with another body is a 422, whether it was first used earlier in this batch or
    in an earlier one.
    """
    expired = False
    found: tuple[str, str, str] | None = None
    if scoped in batch.fresh_keys:
        first_digest, posted = batch.fresh_keys[scoped]
        found = (first_digest, posted.remote_id, posted.type)
    elif stored is not None and stored.created_at > batch.now - batch.ttl:
        found = (stored.request_hash, stored.remote_id, stored.type)
    else:
        expired = stored is not None
    if found is None:
        return None, expired
    if found[0] != digest:
        raise KeyfobError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was first used with a different request; use a new key",
        )
    return Posted(found[1], found[2], replayed=True), False


@dataclass(frozen=True)
class TimeWindow:
    """When a remote may start and until when it may be sent (``Keyfob-Not-Before``,
    ``Keyfob-Expires-At``; ``remotes.control.window``). Waiting costs no wake-up: the remote
    is not due before ``not_before``."""

    not_before: datetime | None = None
    expires_at: datetime | None = None


ANY_TIME = TimeWindow()


@dataclass(frozen=True)
class UserOwner:
    """The user face's owner of a remote, and the remote's own attributes."""

    client_id: str
    user_id: str
    own: RemoteAttributes = field(default_factory=RemoteAttributes)


def stage(
    batch: Batch,
    *,
    remote_id: str,
    vehicle: Vehicle,
    callback_id: str,
    body: RemoteBody,
    user: UserOwner | None = None,
    window: TimeWindow = ANY_TIME,
) -> None:
    """Queue the rows of an accepted remote: fleet face unless ``user`` says whose it is."""
    now = batch.now
    status = first_status(body.type)
    attributes, callback_attributes = (None, None) if user is None else user.own.stored()
    context = None
    if user is not None:
        context = remote_context(body.label, attributes, callback_attributes)
    ref = RemoteRef(remote_id, callback_id, vehicle.vin, body.type.value, 0, context)
    event_row, outbox = event_values(ref, 1, EventType.PENDING, status.value, now, None, None)
    batch.remotes.append(
        {
            "id": remote_id,
            "fleet_id": vehicle.fleet_id if user is None else None,
            "vehicle_id": vehicle.id,
            "callback_id": callback_id,
            "type": body.type.value,
            "label": body.label,
            "body": body.to_stored(),
            "status": status.value,
            "failure_cause": None,
            "feedback_detail": None,
            "last_seq": 1,
            "phase": QUEUED,
            "due_at": window.not_before or now,
            "deadline_at": None,
            "command_id": None,
            "created_at": now,
            "updated_at": now,
            "user_id": None if user is None else user.user_id,
            "client_id": None if user is None else user.client_id,
            "attributes": attributes,
            "callback_attributes": callback_attributes,
            "not_before": window.not_before,
            "expires_at": window.expires_at,
        }
    )
    batch.events.append(event_row)
    batch.notifications.append(notification_row(callback_id, outbox, now, context))
