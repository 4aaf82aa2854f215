"""What a command checks before it starts anything: the port, the database, the broker.

Each check ends the command with one line and its exit code (``cli.exits``) when the operator
has something to fix, before migrations run, demo credentials are written or roles start; a
problem found later would cost a wait, a half-provisioned database and a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from keyfob.cli.exits import Exit, stop
from keyfob.config import Settings
from keyfob.link.mqtt import MqttTransport
from keyfob.link.transport import Backoff, TransportError
from keyfob.runtime.context import db_timeouts
from keyfob.store.engine import Database, async_url, sqlite_file

URL_FORMS = "sqlite:///relative.db, sqlite:////absolute.db or postgresql://user@host/name"
BROKER_WAIT_S = 3.0


def check_listen(host: str, port: int) -> None:
    """The address and port a command will listen on (``serve``, ``listen``) can be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            why = f"port {port} on {host} is already in use"
            stop(Exit.LISTEN, f"cannot listen on {where}: {why}; choose another with --port")
        if exc.errno == errno.EACCES:
            why = f"not allowed to use port {port} (below 1024 needs privileges)"
            stop(Exit.LISTEN, f"cannot listen on {where}: {why}; choose another with --port")
        stop(Exit.LISTEN, f"cannot listen on {where}: {_reason(exc)}; check --host")


def check_database(settings: Settings) -> None:
    """The database URL is one keyfob can use and the database answers."""
    url = settings.db
    try:
        async_url(url)
    except (ArgumentError, ValueError):
        hint = f" (a file here: sqlite:///{url})" if "://" not in url else ""
        stop(Exit.DATABASE, f"cannot use the database URL {url!r}: use {URL_FORMS}{hint}")
    shown = make_url(url).render_as_string(hide_password=True)
    folder = _sqlite_folder(url)
    if folder is not None and not folder.is_dir():
        stop(Exit.DATABASE, f"cannot open the database {shown}: no folder {folder}")
    try:
        asyncio.run(_answers(settings))
    except (OSError, SQLAlchemyError) as exc:
        stop(Exit.DATABASE, f"cannot reach the database {shown}: {_reason(exc)}")


def _sqlite_folder(url: str) -> Path | None:
    found = sqlite_file(url)
    return None if found is None else Path(found).parent


async def _answers(settings: Settings) -> None:
    database = Database(settings.db, pool_size=1, timeouts=db_timeouts(settings))
    try:
        async with database.read() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await database.dispose()


def check_broker(settings: Settings) -> None:
    """The broker in ``settings.mqtt`` accepts a connection with its credentials."""
    if not settings.mqtt:
        return
    try:
        asyncio.run(_broker_answers(settings.mqtt))
    except TransportError as exc:
        stop(Exit.BROKER, f"cannot reach the MQTT broker: {_reason(exc)}")


async def _broker_answers(url: str) -> None:
    # A throw-away clean session: the dispatcher's persistent one is left alone.
    link = MqttTransport(
        url,
        client_id=f"keyfob-check-{uuid.uuid4().hex[:12]}",
        clean_session=True,
        connect_timeout=BROKER_WAIT_S,
        backoff=Backoff(initial=0.2, maximum=1.0),
    )
    await link.start()
    await link.stop()


def _reason(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's statement and links."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(cause, TimeoutError) or (
        isinstance(cause, OSError) and cause.errno is None and not str(cause)
    ):
        return "no answer in time"
    words = str(cause).strip().splitlines()
    if not words:
        return type(cause).__name__
    line = re.sub(r"\[Errno -?\d+\] ", "", words[0])
    return re.sub(r" \(while attempting to bind on address .*\)$", "", line)


def check_all(settings: Settings, *, listen: bool = False) -> None:
    """The port (when the command serves), the broker if any, then the database (last, as
    reaching a SQLite database makes its file)."""
    if listen:
        check_listen(settings.host, settings.port)
    check_broker(settings)
    check_database(settings)
