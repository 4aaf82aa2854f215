"""Migration 0003 builds the user face's tables exactly as ``auth.user_models`` declares them,
on both engines, and comes back down cleanly."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.store.schema import metadata

TABLES = {
    "users",
    "user_vehicles",
    "oauth_clients",
    "oauth_grants",
    "authorization_codes",
    "refresh_tokens",
    "token_revocations",
    "signing_keys",
}


def _ours(diff: Any) -> bool:
    """A difference that concerns one of 0003's tables (others belong to other revisions)."""
    flat = diff if isinstance(diff, tuple) else diff[0]
    for part in flat:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if name in TABLES or getattr(table, "name", None) in TABLES or part in TABLES:
            return True
    return False


async def test_the_migrated_schema_matches_the_declared_tables(db: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection)
        return [d for d in compare_metadata(context, metadata) if _ours(d)]

    async with db.engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == []


async def test_0003_goes_down_to_0002_and_up_again(db: Database) -> None:
    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    await _downgrade(db, "0002")
    assert await migrate.current(db) == "0002"
    async with db.engine.connect() as conn:
        assert not TABLES & await conn.run_sync(tables)
    await migrate.upgrade(db)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(tables) >= TABLES


async def _downgrade(db: Database, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(migrate.alembic_config(connection), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
