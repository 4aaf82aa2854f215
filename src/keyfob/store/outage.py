"""Telling "the database is unreachable" from a bug, and logging an outage once.

While PostgreSQL is down, reset or black-holed, every request that needs it fails the same
way. Logging a traceback and answering 500 for each one buries the one fact an operator
needs (the database has been unreachable since when) and tells clients the fault is
keyfob's. ``unreachable(exc)`` sorts driver exceptions: connection refused or reset, a
time-out (connect, statement or pool), asyncpg's connection errors and the server shutting
down, SQLAlchemy's ``OperationalError``/``InterfaceError`` or an invalidated connection, and
SQLite's locked or unopenable file. Everything else (a constraint, a syntax error, a bug)
stays a 500 with its traceback.

``Outage`` holds the state: ``failed(exc)`` logs one line when an outage starts, ``reached()``
(any database call that succeeded) one line when it ends, with its duration. The API answers
503 with ``Retry-After`` (``retry_after_s``) for unreachable failures (``api.errors``), and
``GET /ready`` reports it.
"""

from __future__ import annotations

import logging
import sqlite3
import time

import asyncpg
from sqlalchemy import exc as sa

log = logging.getLogger("keyfob.store")

_SQLITE_UNREACHABLE = ("locked", "busy", "unable to open", "disk i/o")


def _one_unreachable(error: BaseException) -> bool:
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error.orig, sqlite3.Error):
            return False  # judged on the driver's own exception, below
        return isinstance(error, sa.OperationalError | sa.InterfaceError)
    if isinstance(error, sa.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(part in message for part in _SQLITE_UNREACHABLE)
    return isinstance(
        error,
        OSError  # refused, reset, and TimeoutError (asyncio's included)
        | asyncpg.PostgresConnectionError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.CannotConnectNowError,
    )


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) means the database could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one_unreachable(current):
            return True
        wrapped = getattr(current, "orig", None)
        current = (
            wrapped if isinstance(wrapped, BaseException) else current.__cause__
        ) or current.__context__
    return False


class Outage:
    """Whether the database is currently failing, since when; one log line per change."""

    def __init__(self, *, retry_after_s: int = 5) -> None:
        self.retry_after_s = retry_after_s
        self.since: float | None = None
        """``time.monotonic()`` of the first failure of the current outage."""
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        """An unreachable failure: logged only if it starts an outage."""
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            log.error(
                "database unreachable (%s: %s); answering 503 until it is back",
                type(error).__name__,
                str(error) or ("timed out" if isinstance(error, TimeoutError) else "no message"),
            )

    def reached(self) -> None:
        """A database call succeeded: ends the outage, if there was one."""
        if self.since is None:
            return
        lasted = time.monotonic() - self.since
        failures, self.since, self.failures = self.failures, None, 0
        log.warning(
            "database reachable again after %.1f s (%d failed calls meanwhile)", lasted, failures
        )
