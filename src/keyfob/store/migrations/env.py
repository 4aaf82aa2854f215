"""Alembic environment: runs migrations on the connection ``keyfob.store.migrate`` hands over.

The store cannot import the domains' tables (they sit above it), so whoever wants autogenerate
or a schema comparison passes the complete metadata (``keyfob.runtime.tables.metadata``) in
the config's attributes; applying migrations needs none.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic's own CLI is used
    raise RuntimeError("run migrations through `keyfob db upgrade`")

context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
