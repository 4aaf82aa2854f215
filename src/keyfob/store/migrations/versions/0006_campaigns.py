"""campaigns: one remote body sent to many vehicles of a fleet at a controlled pace

A fleet campaign (an extension, docs/extensions.md) is a row of its rules (rate, ramp, abort
threshold, schedule) and one target row per vehicle, which the campaign runner turns into
ordinary remotes in order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyfob.store.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = keyfob.store.schema.UtcDateTime
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=False),
        sa.Column("callback_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("ramp_s", sa.Integer(), nullable=False),
        sa.Column("abort_percent", sa.Integer(), nullable=True),
        sa.Column("abort_min_finished", sa.Integer(), nullable=False),
        sa.Column("starts_at", when(), nullable=False),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("finished_at", when(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["callback_id"], ["callbacks.id"], name=op.f("fk_campaigns_callback_id_callbacks")
        ),
        sa.ForeignKeyConstraint(
            ["fleet_id"], ["fleets.id"], name=op.f("fk_campaigns_fleet_id_fleets")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_campaigns_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_fleet", "campaigns", ["fleet_id", "created_at"])
    op.create_index("ix_campaigns_status_start", "campaigns", ["status", "starts_at"])
    op.create_table(
        "campaign_targets",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("remote_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("started_at", when(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_targets_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_campaign_targets_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "vehicle_id", name=op.f("pk_campaign_targets")),
    )
    op.create_index(
        "ix_campaign_targets_state", "campaign_targets", ["campaign_id", "state", "position"]
    )


def downgrade() -> None:
    op.drop_table("campaign_targets")
    op.drop_table("campaigns")
