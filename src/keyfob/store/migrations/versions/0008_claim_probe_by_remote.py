"""claim probe by remote: PostgreSQL's pending-by-remote index goes

The delivery claim asks, for each candidate, whether an earlier event of its remote is still
pending. PostgreSQL answered through a partial index of pending rows by remote, and through
the other partial and per-callback indexes whenever its statistics made the pending set look
empty, reading every pending row for each candidate. The claim now hides the callback and the
state from the planner (``notifications.queue``), so the probe always reads the remote's rows
through ``ix_notifications_remote_seq``, as SQLite did already. The partial index had no other
reader: every pending row paid for it on insert and on each change of state.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_notifications_pending_remote", table_name="notifications")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_notifications_pending_remote",
            "notifications",
            ["remote_id", "callback_id", "seq"],
            postgresql_where=sa.text("state = 'pending'"),
        )
