"""Alembic environment: runs migrations on the connection ``keyfob.migrate`` hands over."""

from __future__ import annotations

from alembic import context

import keyfob.models
from keyfob.db import metadata

assert keyfob.models  # every table registered on the metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic's own CLI is used
    raise RuntimeError("run migrations through `keyfob db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
