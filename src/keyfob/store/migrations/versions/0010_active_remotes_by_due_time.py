"""active remotes by due time: the dispatcher's queue as a partial index, read in order

The dispatcher claims the active remotes whose time has come, earliest first. Through
``(phase, due_at)`` and a list of three phases, PostgreSQL could only read them as a bitmap
scan and sort them; a bitmap scan never marks the dead entries it passes, and every remote
leaves one behind each phase it leaves, so each claim read every remote that had been queued
since the last vacuum (about 560 entries a claim at saturation, growing). The partial index
holds the active remotes only, by due time: a claim reads them in order and stops at its
limit, and the dead entries it passes are marked and skipped from then on. Finished remotes,
nearly all of the table, are in no queue index at all.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("phase IN ('queued', 'waking', 'sent')")


def upgrade() -> None:
    op.create_index(
        "ix_remotes_active_due",
        "remotes",
        ["due_at"],
        postgresql_where=_ACTIVE,
        sqlite_where=_ACTIVE,
    )
    op.drop_index("ix_remotes_phase_due", table_name="remotes")


def downgrade() -> None:
    op.create_index("ix_remotes_phase_due", "remotes", ["phase", "due_at"])
    op.drop_index("ix_remotes_active_due", table_name="remotes")
