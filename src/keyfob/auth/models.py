"""Partner accounts: the tenants of the fleet face."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table

from keyfob.store.schema import UtcDateTime, metadata

partners = Table(
    "partners",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("login", String(128), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("rate_limit_day", Integer, nullable=True),
    Column("rate_limit_burst", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)
