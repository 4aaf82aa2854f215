"""Decision 32: on SQLite a 202 means the remote is on disk, power loss included.

SQLite in WAL mode with ``synchronous=NORMAL`` loses nothing when the process dies but may lose
the last commits when the machine does; ``FULL`` syncs every commit before it is answered (the
hot units of work flush the log just after the write lock is free: ``test_wal_flush``). The
embedded default is ``FULL``; an operator may choose ``NORMAL`` knowingly
(``db_sqlite_synchronous``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from keyfob.config import Settings
from keyfob.runtime.context import build_context

FULL, NORMAL = 2, 1  # what PRAGMA synchronous answers


async def _synchronous(settings: Settings) -> tuple[int, str]:
    ctx = build_context(settings)
    try:
        async with ctx.database.read() as conn:
            level = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            return int(level), str(journal)
    finally:
        await ctx.database.dispose()


async def test_the_embedded_default_syncs_every_commit(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'keyfob.db'}")
    assert await _synchronous(settings) == (FULL, "wal")


async def test_normal_is_an_explicit_choice(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'keyfob.db'}", db_sqlite_synchronous="NORMAL")
    assert await _synchronous(settings) == (NORMAL, "wal")


def test_other_levels_are_refused() -> None:
    with pytest.raises(ValidationError, match="db_sqlite_synchronous"):
        Settings(db_sqlite_synchronous="OFF")  # type: ignore[arg-type]
