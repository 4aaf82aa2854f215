"""``keyfob db``: apply and inspect migrations."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from keyfob.cli.checks import check_database
from keyfob.cli.defaults import setting
from keyfob.cli.settings import build_settings
from keyfob.store import migrate
from keyfob.store.engine import Database

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
DbOption = Annotated[
    str | None, typer.Option("--db", help=f"Database URL (KEYFOB_DB).  {setting('db')}")
]


@app.command()
def upgrade(db_url: DbOption = None, revision: str = "head") -> None:
    """Apply migrations up to --revision: the newest, unless told otherwise."""
    settings = build_settings(db=db_url)
    check_database(settings)

    async def run() -> str | None:
        database = Database(settings.db)
        try:
            await migrate.upgrade(database, revision)
            return await migrate.current(database)
        finally:
            await database.dispose()

    typer.echo(f"database at revision {asyncio.run(run())}")


@app.command()
def current(db_url: DbOption = None) -> None:
    """Print the revision the database is at."""
    settings = build_settings(db=db_url)
    check_database(settings)

    async def run() -> str | None:
        database = Database(settings.db)
        try:
            return await migrate.current(database)
        finally:
            await database.dispose()

    typer.echo(asyncio.run(run()) or "empty (no migration applied)")
