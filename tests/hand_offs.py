"""Counting hand-offs to aiosqlite's thread: what ``keyfob.bulk`` and ``keyfob.steps`` save."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import MetaData

from keyfob.store.engine import Database


def count_hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """A list that grows by one for every function aiosqlite runs on its thread from now on."""
    calls: list[Any] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def sqlite_with(tmp_path: Path, metadata: MetaData) -> Database:
    """A fresh SQLite database holding ``metadata``'s tables."""
    database = Database(f"sqlite:///{tmp_path / 'hand-offs.db'}")
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    return database


@asynccontextmanager
async def tables_of(database: Database, metadata: MetaData) -> AsyncIterator[Database]:
    """``metadata``'s tables created on ``database`` for the block, dropped after it."""
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    async with database.transaction() as conn:
        await conn.run_sync(metadata.drop_all)
