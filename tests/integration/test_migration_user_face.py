"""Migration 0004 on a database that already holds the fleet face's data, on both engines.

Upgrading keeps every fleet callback and remote as it was (they become the fleet face's rows);
the check constraints then refuse a row with no owner or with two; downgrading removes the
user face's rows and gives ``fleet_id`` back its NOT NULL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.auth.service import create_partner
from keyfob.callbacks.schemas import parse_callback_body
from keyfob.callbacks.service import create_callback
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import utcnow
from keyfob.runtime.tables import callbacks, metadata, remotes
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_fleet, create_vehicle
from keyfob.vocabulary import Motorization

PG_ADMIN = os.environ.get("KEYFOB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of its own, at no revision (migrations are the test's business)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'm.db'}")
        yield database
        await database.dispose()
        return
    name = f"keyfob_mig_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database = Database(f"{PG_ADMIN.rpartition('/')[0]}/{name}")
    try:
        yield database
    finally:
        await database.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def seed_fleet_remote(conn: AsyncConnection, now: datetime, *, last_seq: int) -> Any:
    """A partner, its fleet, a vehicle, a callback and remote ``r1`` through them, written the
    way any revision since 0003 accepts; ``(fleet, vehicle, callback)``."""
    partner = await create_partner(conn, login="p", password="p-secret-password", name="p", now=now)
    fleet = await create_fleet(conn, partner_id=partner.id, name="f", now=now)
    vehicle = await create_vehicle(
        conn,
        fleet_id=fleet.id,
        vin="VF3MIGRATE0000001",
        motorization="Electric",
        capabilities=capabilities_for(Motorization.ELECTRIC),
        now=now,
    )
    body = {
        "callback": {"webhook": {"name": "h", "target": "https://h.example.com/"}},
        "remoteTypes": ["Horn"],
    }
    callback, _ = await create_callback(
        conn,
        fleet_id=fleet.id,
        parsed=parse_callback_body(body, target_policy=TargetPolicy()),
        now=now,
    )
    await conn.execute(
        text(
            "INSERT INTO remotes (id, fleet_id, vehicle_id, callback_id, type, body, status,"
            " last_seq, phase, created_at, updated_at) VALUES ('r1', :fleet, :vehicle,"
            " :callback, 'Horn', '{}', 'Accepted', :last_seq, 'queued', :now, :now)"
        ),
        {
            "fleet": fleet.id,
            "vehicle": vehicle.id,
            "callback": callback.id,
            "now": now,
            "last_seq": last_seq,
        },
    )
    return fleet, vehicle, callback


async def test_fleet_rows_survive_the_upgrade_and_the_owner_is_checked(fresh: Database) -> None:
    await migrate.upgrade(fresh, "0003")
    now = utcnow()
    async with fresh.transaction() as conn:
        fleet, _vehicle, callback = await seed_fleet_remote(conn, now, last_seq=1)

    await migrate.upgrade(fresh)
    assert await migrate.current(fresh) == "0012"  # the head (0005-0012: extensions, indexes, keys)
    async with fresh.read() as conn:
        row = (await conn.execute(select(callbacks).where(callbacks.c.id == callback.id))).one()
        remote = (await conn.execute(select(remotes).where(remotes.c.id == "r1"))).one()
    assert (row.face, row.fleet_id, row.user_id, row.client_id) == ("fleet", fleet.id, None, None)
    assert row.subscribe == callback.subscribe
    assert (remote.fleet_id, remote.user_id, remote.attributes) == (fleet.id, None, None)

    dangling = {**{c: getattr(remote, c) for c in remote._fields}, "id": "r2", "callback_id": "x"}
    with pytest.raises(IntegrityError):  # foreign keys are enforced again after the migration
        async with fresh.transaction() as conn:
            await conn.execute(insert(remotes).values(**dangling))
    ownerless = {**{c: getattr(row, c) for c in row._fields}, "id": "c2", "fleet_id": None}
    with pytest.raises(IntegrityError):
        async with fresh.transaction() as conn:
            await conn.execute(insert(callbacks).values(**ownerless))
    with pytest.raises(IntegrityError):
        async with fresh.transaction() as conn:
            await conn.execute(insert(callbacks).values(**{**ownerless, "face": "user"}))

    await migrate.downgrade(fresh, "0003")
    assert await migrate.current(fresh) == "0003"
    async with fresh.read() as conn:
        kept = (await conn.execute(text("SELECT id, fleet_id FROM callbacks"))).all()
    assert [tuple(r) for r in kept] == [(callback.id, fleet.id)]
    await migrate.upgrade(fresh)
    assert await migrate.current(fresh) == "0012"  # the head (0005-0012: extensions, indexes, keys)


OURS = {"callbacks", "remotes", "notifications", "user_idempotency_keys"}


def _ours(diff: Any) -> bool:
    """A difference on one of the tables 0004 changed (others belong to other revisions)."""
    flat = diff if isinstance(diff, tuple) else diff[0]
    for part in flat:
        table = getattr(part, "table", None)
        if getattr(part, "name", None) in OURS or getattr(table, "name", None) in OURS:
            return True
        if part in OURS:
            return True
    return False


async def test_the_migrated_tables_match_their_declarations(db: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [d for d in compare_metadata(context, metadata) if _ours(d)]

    async with db.engine.connect() as conn:
        assert await conn.run_sync(differences) == []
