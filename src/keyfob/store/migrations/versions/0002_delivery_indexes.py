"""delivery indexes: the claim reads pending notifications in order

The delivery claim used to read and sort every due row, so it grew with the backlog. A partial
index over pending rows in due order serves one event per POST, and a callback's rows by
``(raised_at, seq)`` serve batches, so a claim costs what it takes rather than what waits. The
``(state, due_at)`` index goes: planners preferred it and then sorted. PostgreSQL also gets a
partial index for the "no earlier event still pending" probe, which its planner otherwise
answered by scanning a callback's rows when statistics were missing; SQLite probes
``ix_notifications_remote_seq`` and is spared the extra writes. On PostgreSQL the table also
leaves room on its pages so that taking a lease rewrites no index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PENDING = "state = 'pending'"


def upgrade() -> None:
    op.drop_index("ix_notifications_state_due", table_name="notifications")
    op.drop_index("ix_notifications_callback_state", table_name="notifications")
    op.create_index(
        "ix_notifications_callback_state",
        "notifications",
        ["callback_id", "state", "raised_at", "seq"],
    )
    op.create_index(
        "ix_notifications_pending_due",
        "notifications",
        ["due_at", "raised_at", "seq"],
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_notifications_pending_remote",
            "notifications",
            ["remote_id", "callback_id", "seq"],
            postgresql_where=sa.text(_PENDING),
        )
        # Room on each page for the new version of a row whose lease is taken, so that update
        # stays on its page and touches no index (a "HOT" update); from here on, new pages.
        op.execute("ALTER TABLE notifications SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE notifications RESET (fillfactor)")
        op.drop_index("ix_notifications_pending_remote", table_name="notifications")
    op.drop_index("ix_notifications_pending_due", table_name="notifications")
    op.drop_index("ix_notifications_callback_state", table_name="notifications")
    op.create_index(
        "ix_notifications_callback_state", "notifications", ["callback_id", "state", "raised_at"]
    )
    op.create_index("ix_notifications_state_due", "notifications", ["state", "due_at"])
