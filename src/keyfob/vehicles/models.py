"""Fleets, their vehicles, and what the platform last heard from each vehicle."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table

from keyfob.store.schema import UtcDateTime, metadata

fleets = Table(
    "fleets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("fleet_id", String(64), ForeignKey("fleets.id"), nullable=False, index=True),
    Column("vin", String(17), nullable=False, unique=True),
    Column("motorization", String(16), nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("simulated", Boolean, nullable=False, default=True),
    Column("mqtt_password_hash", String(256), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The latest status document and presence a vehicle published (wire protocol telemetry).
vehicle_states = Table(
    "vehicle_states",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.id"), primary_key=True),
    Column("presence", String(16), nullable=False, default="unknown"),
    Column("presence_at", UtcDateTime, nullable=True),
    Column("status", JSON, nullable=True),
    Column("status_at", UtcDateTime, nullable=True),
    Column("wake_ups_month", String(7), nullable=True),
    Column("wake_ups_in_month", Integer, nullable=False, default=0),
)

# Every wake-up sent, for the monthly quota and the short-window limit (decision 19).
wake_ups = Table(
    "wake_ups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_wake_ups_vehicle_at", "vehicle_id", "at"),
)
