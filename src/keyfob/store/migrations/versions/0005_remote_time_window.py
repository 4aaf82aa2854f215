"""remote time window: a remote may wait until a time and must run before another

The ``Keyfob-Not-Before`` and ``Keyfob-Expires-At`` request headers of POST remote (an
extension, docs/extensions.md) are kept on the remote: ``not_before`` for reading back (the
queue itself waits through ``due_at``), ``expires_at`` for the dispatcher, which ends a remote
not sent by then Done/Failed. Both are optional, so existing rows need nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyfob.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "remotes", sa.Column("not_before", keyfob.store.schema.UtcDateTime(), nullable=True)
    )
    op.add_column(
        "remotes", sa.Column("expires_at", keyfob.store.schema.UtcDateTime(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("remotes") as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("not_before")
