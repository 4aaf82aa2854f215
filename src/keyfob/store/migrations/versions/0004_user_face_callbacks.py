"""user face callbacks: callbacks and remotes owned by an end user through an OAuth client

On the user face a callback or a remote belongs to a (client_id, user) pair rather than to a
fleet (spec §2.4), so both tables gain the pair and their ``fleet_id`` becomes optional, with a
check constraint that each row has exactly one kind of owner. Callbacks gain the face they
belong to and the user face's ``type`` list; remotes gain their own attributes
(``attributes``, ``callbackAttributes``). Notifications gain ``context``: what a user-face
``Message`` needs of its remote beyond the event (its label and own attributes), written with
the row so delivery still needs no join back to the remote. Idempotency keys of the user face
are scoped to the pair, in a table of their own. SQLite changes a column's nullability only by
rebuilding the table, which batch mode does (``keyfob.store.migrate`` turns SQLite's foreign
keys off around it and checks them before the commit).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

import keyfob.store.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CALLBACK_OWNER = (
    "(face = 'fleet' AND fleet_id IS NOT NULL AND user_id IS NULL AND client_id IS NULL)"
    " OR (face = 'user' AND fleet_id IS NULL AND user_id IS NOT NULL AND client_id IS NOT NULL)"
)
REMOTE_OWNER = (
    "(fleet_id IS NOT NULL AND user_id IS NULL AND client_id IS NULL)"
    " OR (fleet_id IS NULL AND user_id IS NOT NULL AND client_id IS NOT NULL)"
)


def _owner_columns(batch_op: BatchOperations, table: str) -> None:
    batch_op.add_column(sa.Column("user_id", sa.String(length=32), nullable=True))
    batch_op.add_column(sa.Column("client_id", sa.String(length=128), nullable=True))
    batch_op.create_foreign_key(op.f(f"fk_{table}_user_id_users"), "users", ["user_id"], ["id"])
    batch_op.create_foreign_key(
        op.f(f"fk_{table}_client_id_oauth_clients"), "oauth_clients", ["client_id"], ["client_id"]
    )


def upgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.alter_column("fleet_id", existing_type=sa.String(length=64), nullable=True)
        batch_op.add_column(
            sa.Column("face", sa.String(length=8), nullable=False, server_default="fleet")
        )
        _owner_columns(batch_op, "callbacks")
        batch_op.add_column(sa.Column("callback_types", sa.String(length=40), nullable=True))
        batch_op.create_index(
            "ix_callbacks_user_created", ["user_id", "client_id", "created_at"], unique=False
        )
        batch_op.create_check_constraint("ck_callbacks_owner", CALLBACK_OWNER)

    with op.batch_alter_table("remotes", schema=None) as batch_op:
        batch_op.alter_column("fleet_id", existing_type=sa.String(length=64), nullable=True)
        _owner_columns(batch_op, "remotes")
        batch_op.add_column(sa.Column("attributes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("callback_attributes", sa.JSON(), nullable=True))
        batch_op.create_check_constraint("ck_remotes_owner", REMOTE_OWNER)

    # A nullable column needs no rebuild on either engine (the table may be large).
    op.add_column("notifications", sa.Column("context", sa.JSON(), nullable=True))

    op.create_table(
        "user_idempotency_keys",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_user_idempotency_keys_client_id_oauth_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_idempotency_keys_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["remote_id"],
            ["remotes.id"],
            name=op.f("fk_user_idempotency_keys_remote_id_remotes"),
        ),
        sa.PrimaryKeyConstraint(
            "client_id", "user_id", "key", name=op.f("pk_user_idempotency_keys")
        ),
    )


def downgrade() -> None:
    """Back to fleet-only rows: user-face callbacks, remotes and what hangs off them go."""
    op.drop_table("user_idempotency_keys")
    op.drop_column("notifications", "context")
    user_remotes = "SELECT id FROM remotes WHERE user_id IS NOT NULL"
    user_callbacks = "SELECT id FROM callbacks WHERE face = 'user'"
    for table, column, owners in (
        ("delivery_attempts", "callback_id", user_callbacks),
        ("notifications", "remote_id", user_remotes),
        ("notifications", "callback_id", user_callbacks),
        ("remote_events", "remote_id", user_remotes),
        ("remotes", "id", user_remotes),
        ("callbacks", "id", user_callbacks),
    ):
        op.execute(f"DELETE FROM {table} WHERE {column} IN ({owners})")  # noqa: S608
    with op.batch_alter_table("remotes", schema=None) as batch_op:
        batch_op.drop_constraint("ck_remotes_owner", type_="check")
        batch_op.drop_column("callback_attributes")
        batch_op.drop_column("attributes")
        batch_op.drop_constraint(op.f("fk_remotes_client_id_oauth_clients"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_remotes_user_id_users"), type_="foreignkey")
        batch_op.drop_column("client_id")
        batch_op.drop_column("user_id")
        batch_op.alter_column("fleet_id", existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_constraint("ck_callbacks_owner", type_="check")
        batch_op.drop_index("ix_callbacks_user_created")
        batch_op.drop_column("callback_types")
        batch_op.drop_constraint(op.f("fk_callbacks_client_id_oauth_clients"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_callbacks_user_id_users"), type_="foreignkey")
        batch_op.drop_column("client_id")
        batch_op.drop_column("user_id")
        batch_op.drop_column("face")
        batch_op.alter_column("fleet_id", existing_type=sa.String(length=64), nullable=False)
