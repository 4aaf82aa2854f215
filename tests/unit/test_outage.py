"""Which database errors mean "unreachable" (answered 503, logged once per outage) and which
are bugs (500 with their traceback)."""

from __future__ import annotations

import logging
import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa

from keyfob.store.outage import Outage, unreachable


def wrapped(
    kind: type[sa.DBAPIError], orig: BaseException, invalidated: bool = False
) -> BaseException:
    return kind("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating"),
        asyncpg.ConnectionDoesNotExistError("closed"),
        sa.TimeoutError("QueuePool limit reached"),
        wrapped(sa.OperationalError, OSError("network unreachable")),
        wrapped(sa.InterfaceError, Exception("connection is closed")),
        wrapped(sa.DBAPIError, Exception("gone"), invalidated=True),
        wrapped(sa.OperationalError, sqlite3.OperationalError("database is locked")),
        sqlite3.OperationalError("unable to open database file"),
    ],
)
def test_unreachable(error: BaseException) -> None:
    assert unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(sa.IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")),
        wrapped(sa.OperationalError, sqlite3.OperationalError("no such table: remotes")),
        wrapped(sa.ProgrammingError, Exception("syntax error")),
        asyncpg.UniqueViolationError("duplicate key"),
        sqlite3.OperationalError("database disk image is malformed"),
        RuntimeError("a bug"),
    ],
)
def test_bugs_are_not_unreachable(error: BaseException) -> None:
    assert not unreachable(error)


def test_an_unreachable_cause_is_found_under_what_wraps_it() -> None:
    outer = RuntimeError("while committing")
    outer.__cause__ = ConnectionResetError(104, "reset")
    assert unreachable(outer)
    assert not unreachable(RuntimeError("while committing"))


def test_one_line_when_an_outage_starts_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(retry_after_s=5)
    with caplog.at_level(logging.INFO, logger="keyfob.store"):
        outage.reached()
        for _ in range(50):
            outage.failed(ConnectionRefusedError(111, "refused"))
        assert outage.down
        outage.reached()
        outage.reached()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "database unreachable (ConnectionRefusedError" in messages[0]
    assert "reachable again after" in messages[1]
    assert "50 failed calls" in messages[1]
    assert not outage.down
