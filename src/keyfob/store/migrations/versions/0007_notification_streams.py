"""notification streams: a callback's notifications in id order

The event streams a consumer dials itself (``.../callbacks/{cbid}/events``, an extension,
docs/extensions.md) read a callback's notifications after a cursor, the notification id, which
starts with its creation time. The existing indexes order a callback's rows by state and raise
time, so without this one every read of a stream would scan all of the callback's rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notifications_callback_id", "notifications", ["callback_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_callback_id", table_name="notifications")
