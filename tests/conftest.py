"""Shared fixtures: a migrated database on each engine, the app, and tenants to call it as.

Every test that takes ``db`` runs twice, on SQLite and on PostgreSQL. PostgreSQL tests use one
database per run (created, migrated, and dropped at the end) and empty every table between
tests, which is much faster than a database per test. Point ``KEYFOB_TEST_PG`` at another
server to use it; the suite fails (it does not skip) when PostgreSQL is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from keyfob.api.app import create_app
from keyfob.auth.service import create_partner
from keyfob.config import Settings
from keyfob.kit.clock import FakeClock
from keyfob.runtime.tables import partners  # noqa: F401 - registers every table
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.store.schema import metadata
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import Vehicle, create_fleet, create_vehicle
from keyfob.vocabulary import Motorization

PG_ADMIN = os.environ.get("KEYFOB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def run_in_thread(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Session set-up may be first requested from inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(work())).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"keyfob_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_in_thread(lambda: admin(f'CREATE DATABASE "{name}"'))
    base, _, _ = PG_ADMIN.rpartition("/")
    url = f"{base}/{name}"

    async def upgrade() -> None:
        database = Database(url)
        await migrate.upgrade(database)
        await database.dispose()

    run_in_thread(upgrade)
    yield url
    run_in_thread(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty_pg(database: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with database.transaction() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'keyfob.db'}")
        await migrate.upgrade(database)
    else:
        database = Database(request.getfixturevalue("pg_url"), pool_size=5)
        await _empty_pg(database)
    yield database
    await database.dispose()


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Database]:
    """A migrated, empty PostgreSQL database, for what only PostgreSQL does."""
    database = Database(pg_url, pool_size=5)
    await _empty_pg(database)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"db": url, "vehicles": 0, "public_url": "https://keyfob.test"}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app(db: Database, clock: FakeClock) -> AsyncIterator[Any]:
    application = create_app(
        make_settings(db.url, delivery={"allow_private_webhooks": False}),
        database=db,
        clock=clock,
        announce=lambda _: None,
    )
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class Tenant:
    """A partner with one fleet of three vehicles (one per motorization) and a client."""

    login: str
    password: str
    client_id: str
    fleet_id: str
    vehicles: dict[str, Vehicle]
    http: httpx.AsyncClient

    @property
    def fleet(self) -> str:
        return f"/connectedcar/v3/fleets/{self.fleet_id}"


async def make_tenant(app: Any, db: Database, login: str, now: Any) -> Tenant:
    password = f"{login}-secret-password"
    async with db.transaction() as conn:
        partner = await create_partner(conn, login=login, password=password, name=login, now=now)
        fleet = await create_fleet(conn, partner_id=partner.id, name=f"{login} fleet", now=now)
        vehicles = {}
        for index, motorization in enumerate(
            (Motorization.ELECTRIC, Motorization.HYBRID, Motorization.THERMIC)
        ):
            vin = f"VF3{login[:1].upper()}TEST{index:09d}"[:17]
            vehicles[motorization.value] = await create_vehicle(
                conn,
                fleet_id=fleet.id,
                vin=vin,
                motorization=motorization.value,
                capabilities=capabilities_for(motorization),
                now=now,
            )
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://keyfob.test",
        auth=(login, password),
        params={"client_id": partner.client_id},
    )
    return Tenant(login, password, partner.client_id, fleet.id, vehicles, http)


@pytest.fixture
async def tenant(app: Any, db: Database, clock: FakeClock) -> AsyncIterator[Tenant]:
    found = await make_tenant(app, db, "alice", clock())
    yield found
    await found.http.aclose()


@pytest.fixture
async def other_tenant(app: Any, db: Database, clock: FakeClock) -> AsyncIterator[Tenant]:
    found = await make_tenant(app, db, "bob", clock())
    yield found
    await found.http.aclose()


ALL_TYPES = [
    "ThermalPreconditioning",
    "ElectricBatteryChargingRequest",
    "Horn",
    "Doors",
    "Lights",
    "Immobilization",
    "Stolen",
    "WakeUp",
    "Navigation",
]
"""Every remote type of the contract, spelled as the contract spells them."""

CALLBACK = {
    "label": "ops",
    "callback": {"webhook": {"target": "https://hooks.example.com/keyfob", "name": "ops"}},
    "remoteTypes": ALL_TYPES,
}


async def create_callback(tenant: Tenant, body: dict[str, Any] | None = None) -> str:
    answer = await tenant.http.post(f"{tenant.fleet}/remote/callbacks", json=body or CALLBACK)
    assert answer.status_code == 200, answer.text
    callback_id: str = answer.json()["callbackId"]
    return callback_id
