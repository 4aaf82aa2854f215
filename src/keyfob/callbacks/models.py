"""Callbacks: where and how notifications are delivered, for a fleet or for an end user.

A callback belongs to one face (``face``): a fleet's (``fleet_id``, the fleet face) or an end
user's as seen through one OAuth client (``user_id`` + ``client_id``, the user face, §2.4). A
check constraint keeps the two apart, so no query on one face can meet the other's rows.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from keyfob.store.schema import UtcDateTime, metadata


class Face(StrEnum):
    """Which face of the API a callback belongs to; the value is the ``face`` column's."""

    FLEET = "fleet"
    USER = "user"


callbacks = Table(
    "callbacks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("fleet_id", String(64), ForeignKey("fleets.id"), nullable=True),
    Column("face", String(8), nullable=False, server_default=Face.FLEET.value),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=True),
    Column("client_id", String(128), ForeignKey("oauth_clients.client_id"), nullable=True),
    Column("label", String(200), nullable=True),
    # The normalized subscribe body (RemoteCallbackSubscribe or CallbackSubscribe), echoed
    # back as ``subscribe``.
    Column("subscribe", JSON, nullable=False),
    # ",Horn,Doors," so the ``types`` filter is a LIKE on both engines ("" on the user face).
    Column("remote_types", String(400), nullable=False),
    # The user face's ``type``, ",Monitor,Remote," likewise (NULL on the fleet face).
    Column("callback_types", String(40), nullable=True),
    Column("status", String(16), nullable=False),
    # Effective batching (NULL = one event per POST): absent batchNotify, or attributes that
    # vary per event in headers or the query, leave these NULL. Always NULL on the user face,
    # whose messages go one by one unless a backlog builds up (notifications.queue).
    Column("batch_size", Integer, nullable=True),
    Column("batch_window_s", Integer, nullable=True),
    # Signing secrets, newest first: [{"secret", "created_at", "expires_at"}].
    Column("secrets", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("failed_at", UtcDateTime, nullable=True),
    Column("deleted_at", UtcDateTime, nullable=True),
    Index("ix_callbacks_fleet_created", "fleet_id", "created_at"),
    Index("ix_callbacks_user_created", "user_id", "client_id", "created_at"),
    CheckConstraint(
        "(face = 'fleet' AND fleet_id IS NOT NULL AND user_id IS NULL AND client_id IS NULL)"
        " OR (face = 'user' AND fleet_id IS NULL AND user_id IS NOT NULL"
        " AND client_id IS NOT NULL)",
        name="ck_callbacks_owner",
    ),
)
