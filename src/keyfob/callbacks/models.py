"""Remote callbacks: where and how a fleet's notifications are delivered."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table

from keyfob.store.schema import UtcDateTime, metadata

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("fleet_id", String(64), ForeignKey("fleets.id"), nullable=False),
    Column("label", String(200), nullable=True),
    # The normalized RemoteCallbackSubscribe body, echoed back as ``subscribe``.
    Column("subscribe", JSON, nullable=False),
    # ",Horn,Doors," so the ``types`` filter is a LIKE on both engines.
    Column("remote_types", String(400), nullable=False),
    Column("status", String(16), nullable=False),
    # Effective batching (NULL = one event per POST): absent batchNotify, or attributes that
    # vary per event in headers or the query, leave these NULL.
    Column("batch_size", Integer, nullable=True),
    Column("batch_window_s", Integer, nullable=True),
    # Signing secrets, newest first: [{"secret", "created_at", "expires_at"}].
    Column("secrets", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("failed_at", UtcDateTime, nullable=True),
    Column("deleted_at", UtcDateTime, nullable=True),
    Index("ix_callbacks_fleet_created", "fleet_id", "created_at"),
)
