"""The acceptor's retry is idempotent: a unit whose COMMIT went through but whose driver then
raised (a connection dropped at the worst moment) stores each remote once, and the client gets
the id that was stored; when what committed cannot be told, a 503 and still nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from conftest import Tenant, create_callback
from keyfob.errors import ErrorCode
from keyfob.remotes import accept
from keyfob.store.engine import Database

HORN = {"horn": {"state": "Activated"}}


def dropped() -> OperationalError:
    return OperationalError("COMMIT", {}, ConnectionResetError("connection reset (injected)"))


def fail_after_commit(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> list[int]:
    """The next ``times`` units run and commit, then their driver raises. Counts them."""
    failed: list[int] = []
    real_unit, real_turn = accept.run_unit, accept.sqlite_turn

    async def run_unit(database: Database, make_plan: Callable[[], Any]) -> Any:
        answers = await real_unit(database, make_plan)
        if len(failed) < times:
            failed.append(len(answers))
            raise dropped()
        return answers

    @asynccontextmanager
    async def sqlite_turn(database: Database) -> AsyncIterator[Any]:
        async with real_turn(database) as submit:
            if submit is None:
                yield None
                return

            def faulty(plan: Any) -> asyncio.Future[Any]:
                unit = submit(plan)

                async def then_raise() -> Any:
                    answers = await unit
                    if answers and len(failed) < times:
                        failed.append(len(answers))
                        raise dropped()
                    return answers

                return asyncio.ensure_future(then_raise())

            yield faulty

    monkeypatch.setattr(accept, "run_unit", run_unit)
    monkeypatch.setattr(accept, "sqlite_turn", sqlite_turn)
    return failed


async def stored(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.exec_driver_sql("SELECT id FROM remotes")
        return [row[0] for row in rows]


def remotes_url(tenant: Tenant, callback: str) -> str:
    return f"{tenant.fleet}/vehicles/{tenant.vehicles['Electric'].id}/callbacks/{callback}/remotes"


async def test_a_remote_committed_before_the_driver_failed_is_stored_once(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = remotes_url(tenant, await create_callback(tenant))
    failed = fail_after_commit(monkeypatch)
    answer = await tenant.http.post(url, json=HORN)  # no Idempotency-Key
    assert failed == [1], "the unit committed, then raised"
    assert answer.status_code == 202, answer.text
    remote_id = answer.json()["remoteActionId"]
    assert await stored(db) == [remote_id]
    again = await tenant.http.get(f"{url}/{remote_id}")
    assert again.status_code == 200, again.text


async def test_a_batch_committed_before_the_driver_failed_is_stored_once(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = remotes_url(tenant, await create_callback(tenant))
    failed = fail_after_commit(monkeypatch)
    answers = await asyncio.gather(*(tenant.http.post(url, json=HORN) for _ in range(40)))
    assert len(failed) == 1, "the first unit committed, then raised"
    assert [a.status_code for a in answers] == [202] * 40
    ids = [a.json()["remoteActionId"] for a in answers]
    assert len(set(ids)) == 40
    assert sorted(await stored(db)) == sorted(ids)


async def test_when_what_committed_cannot_be_told_it_answers_503_and_stores_nothing_twice(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = remotes_url(tenant, await create_callback(tenant))
    failed = fail_after_commit(monkeypatch)
    real_read = db.read

    @asynccontextmanager
    async def unreachable_read() -> AsyncIterator[Any]:
        if failed:  # the database went away right after the COMMIT
            raise dropped()
        async with real_read() as conn:
            yield conn

    monkeypatch.setattr(db, "read", unreachable_read)
    answer = await tenant.http.post(url, json=HORN)
    monkeypatch.setattr(db, "read", real_read)
    assert failed == [1]
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == ErrorCode.UNAVAILABLE.code
    assert int(answer.headers["Retry-After"]) > 0
    assert len(await stored(db)) == 1, "stored by the first attempt, and not again"
