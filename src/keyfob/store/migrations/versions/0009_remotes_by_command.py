"""remotes by command: the vehicles' results find their remotes through an index

A result names its command; the dispatcher looks up the sent remotes of a batch of results by
``command_id``. With no index on it, PostgreSQL read every ``sent`` entry of
``ix_remotes_phase_due``, the dead ones left by each remote's earlier phases included (several
thousand per look-up under load), and visited their rows. The index holds only the remotes
that have had a command.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_SENT_ONCE = sa.text("command_id IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_remotes_command",
        "remotes",
        ["command_id"],
        postgresql_where=_SENT_ONCE,
        sqlite_where=_SENT_ONCE,
    )


def downgrade() -> None:
    op.drop_index("ix_remotes_command", table_name="remotes")
