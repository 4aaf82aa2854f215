"""The acceptor under load: many posts at once, units queued back to back on SQLite.

Whatever the batching, every request gets the answer it would get alone, exactly the accepted
ones are stored, and a batch the database refuses is retried so that one request never fails
another.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from conftest import Tenant, create_callback, make_settings
from keyfob.api.app import create_app
from keyfob.errors import ErrorCode
from keyfob.kit.clock import FakeClock
from keyfob.remotes import accept
from keyfob.store.engine import Database
from keyfob.store.units import Plan

HORN = {"horn": {"state": "Activated"}}


@pytest.fixture
async def app(db: Database, clock: FakeClock) -> AsyncIterator[Any]:
    """The API with budgets no burst of these tests reaches (a 429 is not what they test)."""
    settings = make_settings(db.url, rate_limit={"day": 10**9, "burst": 10**9})
    application = create_app(settings, database=db, clock=clock, announce=lambda _: None)
    async with application.router.lifespan_context(application):
        yield application


def path(tenant: Tenant, callback: str, vehicle: str) -> str:
    return f"{tenant.fleet}/vehicles/{vehicle}/callbacks/{callback}/remotes"


def mixed_requests(tenant: Tenant, callback: str) -> list[tuple[str, dict[str, Any], int]]:
    """120 posts: most good, some for an unknown vehicle, some a thermic car cannot do."""
    electric = tenant.vehicles["Electric"].id
    thermic = tenant.vehicles["Thermic"].id
    charge = {"charging": {"immediate": True}}
    wanted = []
    for n in range(120):
        if n % 10 == 3:
            wanted.append((path(tenant, callback, "0" * 32), HORN, 404))
        elif n % 10 == 7:
            wanted.append((path(tenant, callback, thermic), charge, 400))
        else:
            wanted.append((path(tenant, callback, electric), HORN, 202))
    return wanted


async def stored_remotes(db: Database) -> set[str]:
    async with db.read() as conn:
        rows = await conn.exec_driver_sql("SELECT id FROM remotes")
        return {row[0] for row in rows}


async def post_all(
    tenant: Tenant, wanted: list[tuple[str, dict[str, Any], int]]
) -> list[httpx.Response]:
    posts = asyncio.gather(*(tenant.http.post(url, json=body) for url, body, _ in wanted))
    return await asyncio.wait_for(posts, 60)  # a request never answered fails, not hangs


async def test_concurrent_posts_each_get_their_own_answer(tenant: Tenant, db: Database) -> None:
    wanted = mixed_requests(tenant, await create_callback(tenant))
    answers = await post_all(tenant, wanted)
    assert [a.status_code for a in answers] == [status for _, _, status in wanted]
    accepted = {a.json()["remoteActionId"] for a in answers if a.status_code == 202}
    assert len(accepted) == 96
    assert await stored_remotes(db) == accepted


def count_in_flight(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many units were queued on the connection each time one more was submitted."""
    seen: list[int] = []
    original = accept.Acceptor._turn

    async def turn(self: accept.Acceptor, submit: Callable[[Plan[Any]], Any], units: Any) -> Any:
        pending: list[asyncio.Future[Any]] = []

        def counted(plan: Plan[Any]) -> Any:
            pending[:] = [unit for unit in pending if not unit.done()]
            unit = submit(plan)
            pending.append(unit)
            seen.append(len(pending))
            return unit

        return await original(self, counted, units)

    monkeypatch.setattr(accept.Acceptor, "_turn", turn)
    return seen


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # PostgreSQL has a pool instead
async def test_sqlite_queues_the_next_unit_while_one_runs(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = await create_callback(tenant)
    seen = count_in_flight(monkeypatch)
    answers = await post_all(tenant, mixed_requests(tenant, callback) * 3)
    assert sum(a.status_code == 202 for a in answers) == 288
    assert max(seen) == 2, "a second unit waited on the connection while the first ran"


async def test_a_batch_the_database_refuses_is_retried_request_by_request(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = await create_callback(tenant)
    original = accept.accept_plan
    refused: list[int] = []

    def flaky(requests: list[accept.AcceptRequest], **kwargs: Any) -> Any:
        if len(requests) > 1 and not refused:
            refused.append(len(requests))
            yield from original(requests, **kwargs)  # written, then rolled back
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return (yield from original(requests, **kwargs))

    monkeypatch.setattr(accept, "accept_plan", flaky)
    wanted = mixed_requests(tenant, callback)
    answers = await post_all(tenant, wanted)
    assert refused, "some batch held more than one request"
    assert [a.status_code for a in answers] == [status for _, _, status in wanted]
    accepted = {a.json()["remoteActionId"] for a in answers if a.status_code == 202}
    assert await stored_remotes(db) == accepted


async def test_a_request_the_database_refuses_alone_gets_a_server_error(
    app: Any, tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = path(tenant, await create_callback(tenant), tenant.vehicles["Electric"].id)

    def broken(requests: list[accept.AcceptRequest], **kwargs: Any) -> Any:
        yield from ()
        raise sqlite3.OperationalError("database disk image is malformed (injected)")

    monkeypatch.setattr(accept, "accept_plan", broken)
    # The app's last-resort handler answers the 500, then re-raises for the server to log.
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="https://keyfob.test",
        auth=(tenant.login, tenant.password),
        params={"client_id": tenant.client_id},
    )
    async with client:
        answer = await client.post(url, json=HORN)
    assert answer.status_code == ErrorCode.INTERNAL.status, answer.text
    assert answer.json()["code"] == ErrorCode.INTERNAL.code
    assert await stored_remotes(db) == set()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the turn is SQLite's
async def test_a_turn_that_fails_still_answers_every_request(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the turn itself (not in a unit) must not leave a request waiting for ever."""
    callback = await create_callback(tenant)
    original = accept.Acceptor._turn
    broken: list[bool] = []

    async def turn(self: accept.Acceptor, submit: Any, units: Any) -> None:
        if not broken:
            broken.append(True)
            raise RuntimeError("a bug in the turn (injected)")
        await original(self, submit, units)

    monkeypatch.setattr(accept.Acceptor, "_turn", turn)
    wanted = mixed_requests(tenant, callback)
    answers = await post_all(tenant, wanted)
    assert broken
    assert [a.status_code for a in answers] == [status for _, _, status in wanted]
    accepted = {a.json()["remoteActionId"] for a in answers if a.status_code == 202}
    assert await stored_remotes(db) == accepted


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_light_load_queues_no_second_unit(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit queued for one or two requests would only add a commit and delay others."""
    url = path(tenant, await create_callback(tenant), tenant.vehicles["Electric"].id)
    seen = count_in_flight(monkeypatch)
    for _ in range(3):
        answers = await asyncio.gather(*(tenant.http.post(url, json=HORN) for _ in range(3)))
        assert [a.status_code for a in answers] == [202] * 3
    assert seen
    assert max(seen) == 1
