"""Alembic migrations: the one way the schema changes, applied at start-up and by ``keyfob db``."""
