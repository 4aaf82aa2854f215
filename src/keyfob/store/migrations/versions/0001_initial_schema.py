"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyfob.store.schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("login", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rate_limit_day", sa.Integer(), nullable=True),
        sa.Column("rate_limit_burst", sa.Integer(), nullable=True),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("login", name=op.f("uq_partners_login")),
    )
    op.create_table(
        "fleets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_fleets_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleets")),
    )
    with op.batch_alter_table("fleets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fleets_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "callbacks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("subscribe", sa.JSON(), nullable=False),
        sa.Column("remote_types", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=True),
        sa.Column("batch_window_s", sa.Integer(), nullable=True),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("failed_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_callbacks_fleet_id_fleets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_callbacks_fleet_created", ["fleet_id", "created_at"], unique=False
        )

    op.create_table(
        "vehicles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("motorization", sa.String(length=16), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("mqtt_password_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_vehicles_fleet_id_fleets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("vin", name=op.f("uq_vehicles_vin")),
    )
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vehicles_fleet_id"), ["fleet_id"], unique=False)

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("callback_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("notification_ids", sa.JSON(), nullable=False),
        sa.Column("started_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_class", sa.String(length=40), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callbacks.id"],
            name=op.f("fk_delivery_attempts_callback_id_callbacks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_attempts_callback", ["callback_id", "started_at"], unique=False
        )

    op.create_table(
        "remotes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("callback_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("failure_cause", sa.String(length=60), nullable=True),
        sa.Column("feedback_detail", sa.String(length=40), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("due_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["callback_id"], ["callbacks.id"], name=op.f("fk_remotes_callback_id_callbacks")
        ),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_remotes_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_remotes_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remotes")),
    )
    with op.batch_alter_table("remotes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_remotes_listing", ["callback_id", "vehicle_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_remotes_phase_due", ["phase", "due_at"], unique=False)
        batch_op.create_index("ix_remotes_vehicle_phase", ["vehicle_id", "phase"], unique=False)

    op.create_table(
        "vehicle_states",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("presence_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.JSON(), nullable=True),
        sa.Column("status_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("wake_ups_month", sa.String(length=7), nullable=True),
        sa.Column("wake_ups_in_month", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_vehicle_states_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicle_states")),
    )
    op.create_table(
        "wake_ups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_wake_ups_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wake_ups")),
    )
    with op.batch_alter_table("wake_ups", schema=None) as batch_op:
        batch_op.create_index("ix_wake_ups_vehicle_at", ["vehicle_id", "at"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_idempotency_keys_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["remote_id"], ["remotes.id"], name=op.f("fk_idempotency_keys_remote_id_remotes")
        ),
        sa.PrimaryKeyConstraint("partner_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "remote_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("remote_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("failure_cause", sa.String(length=60), nullable=True),
        sa.Column("feedback_detail", sa.String(length=40), nullable=True),
        sa.Column("created_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["remote_id"], ["remotes.id"], name=op.f("fk_remote_events_remote_id_remotes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_events")),
        sa.UniqueConstraint("remote_id", "seq", name="uq_remote_events_remote_seq"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("callback_id", sa.String(length=32), nullable=False),
        sa.Column("remote_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("raised_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", keyfob.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["callback_id"], ["callbacks.id"], name=op.f("fk_notifications_callback_id_callbacks")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["remote_events.id"], name=op.f("fk_notifications_event_id_remote_events")
        ),
        sa.ForeignKeyConstraint(
            ["remote_id"], ["remotes.id"], name=op.f("fk_notifications_remote_id_remotes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_callback_state", ["callback_id", "state", "raised_at"], unique=False
        )
        batch_op.create_index("ix_notifications_remote_seq", ["remote_id", "seq"], unique=False)
        batch_op.create_index("ix_notifications_state_due", ["state", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_state_due")
        batch_op.drop_index("ix_notifications_remote_seq")
        batch_op.drop_index("ix_notifications_callback_state")

    op.drop_table("notifications")
    op.drop_table("remote_events")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("wake_ups", schema=None) as batch_op:
        batch_op.drop_index("ix_wake_ups_vehicle_at")

    op.drop_table("wake_ups")
    op.drop_table("vehicle_states")
    with op.batch_alter_table("remotes", schema=None) as batch_op:
        batch_op.drop_index("ix_remotes_vehicle_phase")
        batch_op.drop_index("ix_remotes_phase_due")
        batch_op.drop_index("ix_remotes_listing")

    op.drop_table("remotes")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_attempts_callback")

    op.drop_table("delivery_attempts")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicles_fleet_id"))

    op.drop_table("vehicles")
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_fleet_created")

    op.drop_table("callbacks")
    with op.batch_alter_table("fleets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fleets_partner_id"))

    op.drop_table("fleets")
    op.drop_table("partners")
