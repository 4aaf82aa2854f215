"""Remote actions, their ordered events, and idempotency keys.

The ``remotes`` row is also the dispatcher's queue entry: ``phase`` says where the lifecycle
stands and ``due_at`` when it must be looked at next; a dispatcher holds a row only for the
transaction that advances it (``FOR UPDATE SKIP LOCKED``), so a crash holds nothing.

A remote belongs to a fleet (the fleet face) or to an end user through one OAuth client (the
user face, ``user_id`` + ``client_id``), never both: a check constraint says so. Only the user
face's remotes carry attributes of their own (``Remote.attributes``, ``callbackAttributes``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    literal_column,
    text,
)

from keyfob.remotes.lifecycle import ACTIVE_PHASES
from keyfob.store.schema import UtcDateTime, metadata

ACTIVE = tuple(phase.value for phase in ACTIVE_PHASES)
"""The phases in which the dispatcher still owes a remote a step, as the queue index spells them."""

_ACTIVE_SQL = "phase IN (" + ", ".join(f"'{phase}'" for phase in ACTIVE) + ")"

remotes = Table(
    "remotes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("fleet_id", String(64), ForeignKey("fleets.id"), nullable=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.id"), nullable=False),
    Column("callback_id", String(32), ForeignKey("callbacks.id"), nullable=False),
    Column("type", String(40), nullable=False),
    Column("label", String(200), nullable=True),
    Column("body", JSON, nullable=False),
    Column("status", String(40), nullable=False),
    Column("failure_cause", String(60), nullable=True),
    Column("feedback_detail", String(40), nullable=True),
    Column("last_seq", Integer, nullable=False),
    # Dispatcher state: queued -> waking -> sent -> done (see remotes.lifecycle).
    Column("phase", String(16), nullable=False),
    Column("due_at", UtcDateTime, nullable=True),
    Column("deadline_at", UtcDateTime, nullable=True),
    Column("command_id", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=True),
    Column("client_id", String(128), ForeignKey("oauth_clients.client_id"), nullable=True),
    # The user face's per-remote attributes, as given ({type, key, value} lists).
    Column("attributes", JSON, nullable=True),
    Column("callback_attributes", JSON, nullable=True),
    # Extensions (docs/extensions.md): Keyfob-Not-Before, Keyfob-Expires-At.
    Column("not_before", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Index("ix_remotes_listing", "callback_id", "vehicle_id", "created_at"),
    # Migration 0010: the dispatcher's queue, active remotes by due time, read in order.
    Index(
        "ix_remotes_active_due",
        "due_at",
        postgresql_where=text(_ACTIVE_SQL),
        sqlite_where=text(_ACTIVE_SQL),
    ),
    Index("ix_remotes_vehicle_phase", "vehicle_id", "phase"),
    # Migration 0009: the vehicles' results find their remotes by command. Without it the
    # look-up read every sent remote's entry of the (phase, due_at) index of then, dead ones
    # included.
    Index(
        "ix_remotes_command",
        "command_id",
        postgresql_where=text("command_id IS NOT NULL"),
        sqlite_where=text("command_id IS NOT NULL"),
    ),
    CheckConstraint(
        "(fleet_id IS NOT NULL AND user_id IS NULL AND client_id IS NULL)"
        " OR (fleet_id IS NULL AND user_id IS NOT NULL AND client_id IS NOT NULL)",
        name="ck_remotes_owner",
    ),
)

remote_events = Table(
    "remote_events",
    metadata,
    Column("id", String(32), primary_key=True),
    # No foreign key (migration 0011): the event is written with its remote's change of
    # phase, and remotes are never deleted; the check would lock the remote's row each time.
    Column("remote_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(16), nullable=False),
    Column("status", String(40), nullable=False),
    Column("failure_cause", String(60), nullable=True),
    Column("feedback_detail", String(40), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("remote_id", "seq", name="uq_remote_events_remote_seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("partner_id", String(32), ForeignKey("partners.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("remote_id", String(32), ForeignKey("remotes.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The user face's Idempotency-Key, scoped to the (client_id, user) pair that sent it.
user_idempotency_keys = Table(
    "user_idempotency_keys",
    metadata,
    Column("client_id", String(128), ForeignKey("oauth_clients.client_id"), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("remote_id", String(32), ForeignKey("remotes.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


def active() -> ColumnElement[bool]:
    """``phase IN ('queued', 'waking', 'sent')`` spelled with literals, as the partial index
    ``ix_remotes_active_due`` is: bound values would hide the phases from SQLite's planner and
    from PostgreSQL's generic plans, and neither could use that index."""
    clause: ColumnElement[bool] = remotes.c.phase.in_([literal_column(f"'{p}'") for p in ACTIVE])
    return clause
