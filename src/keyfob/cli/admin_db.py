"""How ``keyfob admin`` commands reach the database: one migrated unit of work per command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.cli.checks import check_database
from keyfob.cli.defaults import setting
from keyfob.cli.settings import build_settings
from keyfob.config import Settings
from keyfob.errors import KeyfobError
from keyfob.store import migrate
from keyfob.store.engine import Database

DbOption = Annotated[
    str | None, typer.Option("--db", help=f"Database URL (KEYFOB_DB).  {setting('db')}")
]
T = TypeVar("T")


def run_configured(
    db_url: str | None, work: Callable[[AsyncConnection, Settings], Awaitable[T]]
) -> T:
    """Run ``work`` in one transaction on the migrated database; a refusal exits 1, a
    database that cannot be used or reached 4 (``cli.exits``)."""
    settings = build_settings(db=db_url)
    check_database(settings)

    async def run() -> T:
        database = Database(settings.db)
        try:
            await migrate.upgrade(database)
            async with database.transaction() as conn:
                return await work(conn, settings)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except KeyfobError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def run(db_url: str | None, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    return run_configured(db_url, lambda conn, _: work(conn))


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))
