"""The outbox: one row per (event, callback), and every delivery attempt.

A notification row is written in the same transaction as its event, so no event can exist
without the duty to deliver it. Workers claim due rows with a lease; ``state`` moves
pending -> delivered | abandoned | expired, and a replay puts a row back to pending.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text, text

from keyfob.store.schema import UtcDateTime, metadata

PENDING_ONLY = text("state = 'pending'")
"""The condition of the partial indexes below: only rows still to deliver are indexed, so the
claim reads them in order however many delivered rows the table keeps. Queries must spell it
with the literal (``queue.pending()``), not a bound parameter, for the planners to use them."""

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    # No foreign keys (migration 0011): each would look up and lock its parent's row on every
    # insert, four times a remote on one callback row. keyfob writes these rows alone, in the
    # transaction of their event, and never deletes a callback, remote or event.
    Column("callback_id", String(32), nullable=False),
    Column("remote_id", String(32), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    # The RemoteEvent item exactly as it will be posted (keyfob extensions included).
    Column("event", JSON, nullable=False),
    # User face only: what its Message needs of the remote beyond the event, its label and
    # own attributes (``message.remote_context``); NULL on the fleet face.
    Column("context", JSON, nullable=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("last_attempt_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    # Migration 0002 gave the claim indexes it reads in order: a callback's pending rows by
    # (raised_at, seq) for batches, and pending rows by due time for one event per POST. The
    # former (state, due_at) index went: planners preferred it and then sorted every due row.
    Index("ix_notifications_callback_state", "callback_id", "state", "raised_at", "seq"),
    # The claim's "no earlier event of the remote still pending" probe reads this one, on both
    # databases (migration 0008 dropped PostgreSQL's partial index by remote).
    Index("ix_notifications_remote_seq", "remote_id", "seq"),
    # Migration 0007: a callback's rows in id (creation) order, for the event streams
    # (``notifications.streams``), which read them after a cursor whatever their state.
    Index("ix_notifications_callback_id", "callback_id", "id"),
    Index(
        "ix_notifications_pending_due",
        "due_at",
        "raised_at",
        "seq",
        postgresql_where=PENDING_ONLY,
        sqlite_where=PENDING_ONLY,
    ),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("callback_id", String(32), nullable=False),  # no foreign key: see notifications
    Column("message_id", String(40), nullable=False),
    Column("notification_ids", JSON, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("latency_ms", Integer, nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("error_class", String(40), nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Column("outcome", String(16), nullable=False),
    Index("ix_delivery_attempts_callback", "callback_id", "started_at"),
)
