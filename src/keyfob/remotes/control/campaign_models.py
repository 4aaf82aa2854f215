"""Fleet campaigns: one remote body sent to many vehicles at a controlled pace.

``campaigns`` holds the campaign and its rules; ``campaign_targets`` one row per vehicle, in
the order they will be started. A target's ``remote_id`` is the ordinary remote it became;
the remote's own row says how it went. The runner (``campaign_runner``) starts targets through
the acceptor, so the table is also its queue: a crash between accepting a remote and marking
its target started is healed by the remote's Idempotency-Key (``campaign-<cid>-<vid>``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table

from keyfob.store.schema import UtcDateTime, metadata

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.id"), nullable=False),
    Column("fleet_id", String(64), ForeignKey("fleets.id"), nullable=False),
    Column("callback_id", String(32), ForeignKey("callbacks.id"), nullable=False),
    Column("type", String(40), nullable=False),
    Column("body", JSON, nullable=False),
    # Scheduled -> Running -> Completed | Aborted | Cancelled
    Column("status", String(16), nullable=False),
    Column("per_minute", Integer, nullable=False),
    Column("ramp_s", Integer, nullable=False),
    Column("abort_percent", Integer, nullable=True),
    Column("abort_min_finished", Integer, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("reason", String(300), nullable=True),
    Index("ix_campaigns_fleet", "fleet_id", "created_at"),
    Index("ix_campaigns_status_start", "status", "starts_at"),
)

campaign_targets = Table(
    "campaign_targets",
    metadata,
    Column("campaign_id", String(32), ForeignKey("campaigns.id"), primary_key=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.id"), primary_key=True),
    Column("position", Integer, nullable=False),
    # pending -> started | refused | cancelled
    Column("state", String(16), nullable=False),
    Column("remote_id", String(32), nullable=True),
    Column("error", String(300), nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Index("ix_campaign_targets_state", "campaign_id", "state", "position"),
)
