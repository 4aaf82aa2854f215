"""Entry point of the ``keyfob`` command line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from keyfob.cli import admin, db
from keyfob.cli.settings import build_settings

app = typer.Typer(
    help="keyfob: remote commands for connected vehicles, with webhook notifications.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080].")] = None,
    db_url: Annotated[
        str | None,
        typer.Option("--db", help="sqlite:///relative.db, sqlite:////abs.db or postgresql://..."),
    ] = None,
    vehicles: Annotated[
        int | None, typer.Option(help="Simulated vehicles provisioned on an empty database [10].")
    ] = None,
    credentials_file: Annotated[
        Path | None, typer.Option(help="Where the demo credentials are written.")
    ] = None,
    mqtt: Annotated[
        str | None, typer.Option(help="mqtt://host:port of a broker (default: in-memory link).")
    ] = None,
    allow_private_webhooks: Annotated[
        bool | None,
        typer.Option(
            "--allow-private-webhooks",
            help="Allow webhooks on loopback and private addresses (local development).",
        ),
    ] = None,
) -> None:
    """Serve the API with every role in one process (embedded default: SQLite, in-memory link)."""
    from keyfob.api.app import create_app
    from keyfob.cli.roles import embedded_roles

    settings = build_settings(
        host=host,
        port=port,
        db=db_url,
        vehicles=vehicles,
        credentials_file=credentials_file,
        mqtt=mqtt,
    )
    if allow_private_webhooks:
        settings.delivery.allow_private_webhooks = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    application = create_app(settings, roles=embedded_roles(settings))
    config = uvicorn.Config(application, host=settings.host, port=settings.port, log_level="info")
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":  # pragma: no cover
    app()
