"""``/ready`` follows the roles the process started: the dispatcher's broker and its loops.

A load balancer must stop sending remotes to a process whose dispatcher lost its broker (it
would accept them and time them out) or whose dispatcher or delivery worker died; ``/ready``
answers 503 with the reason meanwhile, and 200 again once the broker is back. The broker is
a private Mosquitto, stopped and started again by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from conftest import make_settings
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.roles import Role
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.runtime.worker_child import WorkerChild, delivery_child_role
from keyfob.store.engine import Database
from mosquitto import Mosquitto


@asynccontextmanager
async def serving(db: Database, roles: Sequence[Role], **settings: Any) -> AsyncIterator[Any]:
    async with serving_app(db, roles, **settings) as (_, http):
        yield http


@asynccontextmanager
async def serving_app(
    db: Database, roles: Sequence[Role], **settings: Any
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(
        make_settings(db.url, run_simulator=False, **settings),
        database=db,
        clock=utcnow,
        roles=roles,
        announce=lambda _: None,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://keyfob.test"
        ) as http,
    ):
        yield app, http


async def ready_becomes(http: httpx.AsyncClient, status: int, tries: int = 200) -> httpx.Response:
    """Poll ``/ready`` until it answers ``status`` (the link notices a lost broker at once;
    the bound only turns a hang into a failure)."""
    answer = await http.get("/ready")
    for _ in range(tries):
        if answer.status_code == status:
            return answer
        await asyncio.sleep(0.05)
        answer = await http.get("/ready")
    raise AssertionError(f"/ready stayed {answer.status_code}: {answer.text}")


def task_named(name: str) -> asyncio.Task[Any]:
    return next(t for t in asyncio.all_tasks() if t.get_name() == name)


async def test_ready_is_503_while_the_broker_is_away(db: Database, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        async with serving(db, [vehicle_role], mqtt=broker.url()) as http:
            assert (await http.get("/ready")).status_code == 200
            broker.stop()
            away = await ready_becomes(http, 503)
            assert "vehicle link is down" in away.json()["message"]
            assert away.headers["Retry-After"]
            broker.start()
            assert (await ready_becomes(http, 200)).json() == {"status": "ready"}
    finally:
        broker.stop()


async def test_ready_is_503_once_the_dispatcher_died(db: Database) -> None:
    async with serving(db, [vehicle_role]) as http:
        assert (await http.get("/ready")).status_code == 200
        task_named("dispatcher").cancel()
        answer = await ready_becomes(http, 503)
        assert "the dispatcher stopped" in answer.json()["message"]
        assert (await http.get("/health")).status_code == 200, "liveness is not readiness"


async def test_ready_is_503_once_the_delivery_worker_died(db: Database) -> None:
    # The role's stop awaits the worker's task, and so re-raises how it ended.
    with contextlib.suppress(asyncio.CancelledError):
        async with serving(db, [delivery_role]) as http:
            assert (await http.get("/ready")).status_code == 200
            task_named("delivery-worker").cancel()
            answer = await ready_becomes(http, 503)
    assert "the delivery worker stopped" in answer.json()["message"]


async def test_ready_is_503_while_the_worker_process_is_down(db: Database) -> None:
    """``serve``'s default: the worker in a child process, started again when it dies."""
    async with serving_app(db, [delivery_child_role]) as (app, http):
        assert (await http.get("/ready")).status_code == 200
        child = app.state.ctx.checks["delivery"].__self__
        assert isinstance(child, WorkerChild)
        assert child.process is not None
        first = child.process.pid
        child.process.kill()
        down = await ready_becomes(http, 503)
        assert "the delivery worker process is not running" in down.json()["message"]
        await ready_becomes(http, 200, tries=1200)  # a new Python process starts
        assert child.process.pid != first
