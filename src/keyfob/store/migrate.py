"""Apply the alembic migrations to a database, from async code.

On SQLite a migration that changes a column rebuilds its table (alembic's batch mode): a new
table is filled, the old one dropped, the new one renamed. While foreign keys are enforced the
drop fails as soon as another table's rows point at the old one, so migrations run as SQLite
says schema changes must: foreign keys off for the connection, ``PRAGMA foreign_key_check``
before the commit (a migration that leaves a dangling reference fails and is rolled back), and
foreign keys on again before the connection goes back to the pool. PostgreSQL needs none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    await _migrate(database, lambda config: command.upgrade(config, revision))


async def downgrade(database: Database, revision: str) -> None:
    await _migrate(database, lambda config: command.downgrade(config, revision))


async def _migrate(database: Database, step: Callable[[Config], None]) -> None:
    async with database.engine.connect() as conn:
        if not database.sqlite:
            async with conn.begin():
                await conn.run_sync(lambda sync: step(alembic_config(sync)))
            return
        await _foreign_keys(conn, on=False)
        try:
            async with conn.begin():
                await conn.run_sync(lambda sync: step(alembic_config(sync)))
                dangling = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if dangling:
                    raise RuntimeError(f"the migration leaves dangling references: {dangling[:5]}")
        finally:
            await _foreign_keys(conn, on=True)


async def _foreign_keys(conn: AsyncConnection, *, on: bool) -> None:
    """Only outside a transaction does SQLite take this pragma into account."""
    await conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    await conn.commit()


async def current(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as conn:
        return await conn.run_sync(read)
